"""``{% member_appearances member %}``: where a member was recognised, for the member page
(members' views know nothing of recognition; the layering is recognition -> members)."""

from __future__ import annotations

from typing import Any

from django import template

from recognition import unknown_selectors

register = template.Library()

SHOWN = 20


@register.inclusion_tag("recognition/_appearances.html", takes_context=True)
def member_appearances(context: Any, member: Any) -> dict:
    user = context.get("user")
    allowed = unknown_selectors.can_view_unknowns(user)
    rows = unknown_selectors.member_appearances(member_id=member.pk, limit=SHOWN + 1) if allowed else []
    return {
        "allowed": allowed,
        "appearances": rows[:SHOWN],
        "more": len(rows) > SHOWN,
        "member": member,
    }
