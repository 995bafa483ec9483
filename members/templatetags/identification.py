"""``{% identification_bar %}``: the 1:N threshold in use, for the members page."""

from __future__ import annotations

import logging

from django import template

from faceengine.errors import FacesiteError

from ..selectors import identification_bar as current_bar

register = template.Library()
logger = logging.getLogger(__name__)


@register.inclusion_tag("members/_identification.html")
def identification_bar() -> dict:
    try:
        bar = current_bar()
    except FacesiteError as exc:  # a model that cannot be described: the page still lists members
        logger.warning("No identification threshold to show: %s", exc)
        return {"bar": None}
    return {"bar": bar, "far_percent": None if bar.false_accept_rate is None else 100 * bar.false_accept_rate}
