"""The API's JSON parser: DRF's, with a body nested too deeply answered as malformed (400).

Python's json module recurses once per nesting level and raises RecursionError (not the
ValueError DRF turns into a ParseError) somewhere near 1,000 levels: a 500 for a client's mistake.
Bodies are also refused well before that depth, so that the serializers, which recurse as
well, never meet one.
"""

from __future__ import annotations

from typing import Any

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

MAX_DEPTH = 64  # no request of this API nests more than a few levels


def _depth(value: Any) -> int:
    """The nesting depth of parsed JSON, without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (list, dict)):
            deepest = max(deepest, depth)
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return deepest


class SafeJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError(f"JSON parse error - the body nests more than {MAX_DEPTH} levels.") from None
        if _depth(data) > MAX_DEPTH:
            raise ParseError(f"JSON parse error - the body nests more than {MAX_DEPTH} levels.")
        return data


__all__ = ["MAX_DEPTH", "SafeJSONParser"]
