"""The 2019 project's recognizer functions, kept as thin aliases of the services."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..models import (
    Member,
)
from .enrolment import member_add_faces, member_create, member_delete
from .results import EnrolmentResult, PhotoSource


def add_customs(*, display_name: str, photos: Sequence[PhotoSource] = (), **kwargs: Any) -> EnrolmentResult:
    """The old project's add_customs: member_create."""
    return member_create(display_name=display_name, photos=photos, **kwargs)


def add_embds(*, member: Member | int, photos: Sequence[PhotoSource]) -> EnrolmentResult:
    """The old project's add_embds: add photos and average them into the template."""
    return member_add_faces(member=member, photos=photos, mode="average")


def update_customs(*, member: Member | int, photos: Sequence[PhotoSource]) -> EnrolmentResult:
    """The old project's update_customs: replace a member's faces and template."""
    return member_add_faces(member=member, photos=photos, mode="replace")


def del_customs(*, member: Member | int) -> None:
    """The old project's del_customs: member_delete."""
    member_delete(member=member)
