"""What the member services return: an outcome per photo, per enrolment, per folder."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from ..models import (
    Member,
)

MODES = ("average", "replace")


ON_EXISTING = ("skip", "add", "replace")


PhotoSource = Any  # a path, bytes, a file object (Django UploadedFile), or (name, any of those)


Progress = Callable[[int], None]


@dataclass
class PhotoOutcome:
    """What happened to one photo of a request: a face was stored, or why not."""

    index: int
    name: str
    ok: bool = False
    code: str | None = None  # "no_face", "invalid_image", "image_too_large", ...
    message: str | None = None
    face_id: int | None = None
    faces_found: int = 0
    detection: str | None = None  # "detected" or "second_pass"
    warnings: list[str] = field(default_factory=list)  # quality warning codes (faceengine.quality)
    flagged: bool = False  # far from the member's other faces: left out of the template

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class EnrolmentResult:
    member: Member
    outcomes: list[PhotoOutcome]
    model_name: str = ""
    template_count: int = 0

    @property
    def added(self) -> list[PhotoOutcome]:
        return [o for o in self.outcomes if o.ok]

    @property
    def failed(self) -> list[PhotoOutcome]:
        return [o for o in self.outcomes if not o.ok]

    def as_dict(self) -> dict:
        return {
            "member_id": self.member.pk,
            "model_name": self.model_name,
            "template_count": self.template_count,
            "photos": [o.as_dict() for o in self.outcomes],
        }


@dataclass
class RecomputeResult:
    member_id: int
    model_name: str
    embedded: int = 0
    failed: list[dict] = field(default_factory=list)
    template_count: int = 0


@dataclass
class SkippedFile:
    path: str
    code: str
    message: str


@dataclass
class FolderSummary:
    root: str
    on_existing: str
    members_created: int = 0
    members_updated: int = 0
    members_skipped: int = 0  # already enrolled, left alone (on_existing="skip")
    members_failed: int = 0  # folders without one usable photo
    photos_added: int = 0
    skipped_files: list[SkippedFile] = field(default_factory=list)

    def reasons(self) -> Counter:
        return Counter(item.code for item in self.skipped_files)

    def as_dict(self) -> dict:
        data = asdict(self)
        data["reasons"] = dict(self.reasons())
        return data
