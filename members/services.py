"""Writes: enrolling members, adding and replacing their faces, deleting them; identification.

The old project's functions live on as thin aliases: ``add_customs`` (member_create),
``add_embds`` (member_add_faces, averaging), ``update_customs`` (member_add_faces, replacing)
and ``del_customs`` (member_delete).

Every write follows one order, so database locks are held for milliseconds:

1. the engine reads each photo, finds its largest face and embeds it (no database, no locks);
2. the accepted photos are written to MEDIA_ROOT under generated names;
3. one transaction locks the member row (``select_for_update``), writes the rows, updates the
   member's template and changes the gallery version token, so every worker's index notices.

Files of deleted faces are removed only after the transaction commits (``on_commit``).
"""
from __future__ import annotations

import io
import logging
import os
import uuid
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Sequence

import numpy as np
from django.conf import settings
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.utils import timezone

from recognition.engine.errors import EngineError, ImageError, ImageTooLarge
from recognition.engine.index import normalize_rows

from .errors import (
    DuplicateExternalId,
    EnrolmentFailed,
    InvalidImage,
    InvalidInput,
    MemberNotFound,
    NoFace,
    PermissionRefused,
)
from .models import (
    AuditEntry,
    Embedding,
    FaceSample,
    GalleryVersion,
    Member,
    PhotoUpload,
    Template,
    vector_from_bytes,
    vector_to_bytes,
)
from .audit import audit_record
from .selectors import gallery_for_model, gallery_settings, identification_threshold

if TYPE_CHECKING:
    from recognition.engine.recognizer import Recognition, Recognizer

logger = logging.getLogger(__name__)

MODES = ("average", "replace")
ON_EXISTING = ("skip", "add", "replace")
# Pillow format -> the extension of the stored file (the uploaded name is never used).
_EXTENSIONS = {"JPEG": "jpg", "MPO": "jpg", "PNG": "png", "WEBP": "webp", "BMP": "bmp",
               "GIF": "gif", "TIFF": "tif"}

PhotoSource = Any  # a path, bytes, a file object (Django UploadedFile), or (name, any of those)
Progress = Callable[[int], None]


def engine_recognizer(model_name: str | None = None) -> "Recognizer":
    """The process-wide recognizer (TensorFlow loads on first use). Tests replace this."""
    from recognition.runtime import get_recognizer

    return get_recognizer(model_name)


# ------------------------------------------------------------------------------- results


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
        return {"member_id": self.member.pk, "model_name": self.model_name,
                "template_count": self.template_count,
                "photos": [o.as_dict() for o in self.outcomes]}


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


@dataclass
class _Prepared:
    """A photo the engine accepted: its bytes, format and the embedded largest face."""

    outcome: PhotoOutcome
    data: bytes
    ext: str
    width: int
    height: int
    box: tuple[float, float, float, float]
    score: float
    landmarks: np.ndarray
    detection: str
    embedding: np.ndarray


# ------------------------------------------------------------------------------- the engine step


def _read_source(source: PhotoSource, index: int) -> tuple[str, bytes]:
    """(a name for reports, the bytes), reading at most the upload limit plus one byte."""
    limit = settings.FACESITE_MAX_UPLOAD_BYTES
    name = None
    if isinstance(source, tuple) and len(source) == 2:
        name, source = str(source[0]), source[1]
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        name = name or f"photo {index + 1}"
    elif isinstance(source, (str, os.PathLike)):
        path = Path(source)
        name = name or path.name
        if not path.is_file():
            raise ImageError(f"No such file: {path.name}")
        if path.stat().st_size > limit:
            raise ImageTooLarge(f"The file is {path.stat().st_size} bytes; the limit is {limit}.")
        data = path.read_bytes()
    elif hasattr(source, "read"):
        name = name or os.path.basename(str(getattr(source, "name", "") or "")) or f"photo {index + 1}"
        if hasattr(source, "seek"):
            source.seek(0)
        data = source.read(limit + 1)
    else:
        raise ImageError(f"Cannot read a photo from a {type(source).__name__}.")
    if len(data) > limit:
        raise ImageTooLarge(f"The file is over the limit of {limit} bytes.")
    return name, data


def _image_format(data: bytes) -> str:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        return _EXTENSIONS.get(image.format or "", "bin")


def _prepare_photos(photos: Sequence[PhotoSource], recognizer: "Recognizer",
                    progress: Progress | None = None) -> tuple[list[PhotoOutcome], list[_Prepared]]:
    """Run the engine on every photo: one face each, the largest; failures become outcomes."""
    outcomes: list[PhotoOutcome] = []
    prepared: list[_Prepared] = []
    for index, source in enumerate(photos):
        outcome = PhotoOutcome(index=index, name=f"photo {index + 1}")
        outcomes.append(outcome)
        try:
            outcome.name, data = _read_source(source, index)
            rgb = recognizer.load(data)
            faces, second = recognizer.detector.detect_thorough(rgb)
            outcome.faces_found = len(faces)
            if not faces:
                outcome.code, outcome.message = NoFace.code, "No face was found in the photo."
                continue
            largest = max(faces, key=lambda f: float(f.box[2]) * float(f.box[3]))
            embedding = recognizer.embed_faces(rgb, [largest])[0]
            outcome.detection = "second_pass" if second else "detected"
            prepared.append(_Prepared(
                outcome=outcome, data=data, ext=_image_format(data),
                width=int(rgb.shape[1]), height=int(rgb.shape[0]),
                box=tuple(float(v) for v in largest.box), score=float(largest.score),
                landmarks=np.asarray(largest.landmarks, np.float32),
                detection=outcome.detection, embedding=np.asarray(embedding, np.float32),
            ))
        except EngineError as exc:
            outcome.code, outcome.message = exc.code, str(exc)
        except OSError as exc:
            outcome.code, outcome.message = ImageError.code, f"The photo cannot be read: {exc}"
        finally:
            if progress is not None:
                progress(1)
    return outcomes, prepared


def _raise_if_nothing_usable(outcomes: list[PhotoOutcome], prepared: list[_Prepared]) -> None:
    if prepared:
        return
    if outcomes and all(o.code != NoFace.code for o in outcomes):
        raise InvalidImage("None of the photos could be read as an image.", outcomes=outcomes)
    raise NoFace("No face was found in any of the photos.", outcomes=outcomes)


# ------------------------------------------------------------------------------- files


def _photo_field():
    return FaceSample._meta.get_field("photo")


def _store_files(prepared: list[_Prepared]) -> list[str]:
    """Write the accepted photos under generated names; returns the storage names."""
    field_ = _photo_field()
    names: list[str] = []
    try:
        for item in prepared:
            name = field_.generate_filename(None, f"photo.{item.ext}")
            # A full disk: the partial file is removed and StorageFull raised (facesite.disk_full).
            names.append(field_.storage.save(name, ContentFile(item.data), max_length=field_.max_length))
    except Exception:
        _delete_files(names)
        raise
    return names


def _delete_files(names: Iterable[str], storage=None) -> None:
    storage = storage or _photo_field().storage
    for name in names:
        if not name:
            continue
        try:
            storage.delete(name)
        except OSError:
            logger.warning("Could not delete the stored photo %s", name, exc_info=True)


# ------------------------------------------------------------------------------- locked writes


def external_id_taken(external_id: str, *, exclude_id: int | None = None) -> bool:
    """Whether another member has this external id. One rule on every database: ids compare
    case-insensitively ("E17" and "e17" are the same person), as MySQL's collation does anyway;
    SQLite's unique index alone would let both in."""
    members = Member.objects.filter(external_id__iexact=external_id)
    if exclude_id is not None:
        members = members.exclude(pk=exclude_id)
    return members.exists()


def _member_id(member: Member | int) -> int:
    if isinstance(member, Member):
        if member.pk is None:
            raise MemberNotFound("The member has not been saved.")
        return member.pk
    try:
        return int(member)
    except (TypeError, ValueError):
        raise MemberNotFound(f"No member with id {member!r}.", details={"member_id": str(member)}) from None


def _lock_member(member_id: int) -> Member:
    """The member row, locked until the transaction ends; the serialisation point of all writes."""
    member = Member.objects.select_for_update().filter(pk=member_id).first()
    if member is None:
        raise MemberNotFound(f"No member with id {member_id}.", details={"member_id": member_id})
    return member


def _bump_gallery_version() -> None:
    """Change the token every worker compares its cached index with (last write of a transaction,
    so the row is locked only until the commit)."""
    token, now = uuid.uuid4().hex, timezone.now()
    if GalleryVersion.objects.filter(pk=1).update(token=token, changed_at=now):
        return
    try:
        with transaction.atomic():
            GalleryVersion.objects.create(pk=1, token=token)
    except IntegrityError:
        GalleryVersion.objects.filter(pk=1).update(token=token, changed_at=now)


def _locked_template(member_id: int, model_name: str) -> Template | None:
    """The member's template for a model; call only with the member row locked."""
    return Template.objects.select_for_update().filter(member_id=member_id, model_name=model_name).first()


def _template_add(member_id: int, model_name: str, dim: int, vectors: np.ndarray) -> Template:
    """Fold new normalised embeddings into the running mean (member row locked)."""
    vectors = normalize_rows(np.asarray(vectors, np.float32).reshape(-1, dim)).astype(np.float64)
    template = _locked_template(member_id, model_name)
    if template is None or template.count == 0 or template.dim != dim:
        mean, count = vectors.mean(axis=0), len(vectors)
    else:
        old = template.as_array().astype(np.float64)
        count = template.count + len(vectors)
        mean = (old * template.count + vectors.sum(axis=0)) / count
    if template is None:
        template = Template(member_id=member_id, model_name=model_name)
    template.dim, template.count = dim, count
    template.vector = vector_to_bytes(mean.astype(np.float32))
    template.save()
    return template


def _template_rebuild(member_id: int, model_name: str) -> Template | None:
    """Recompute a template from the member's stored embeddings (member row locked)."""
    rows = list(Embedding.objects.filter(face__member_id=member_id, model_name=model_name)
                .order_by("id").values_list("dim", "vector"))
    dims = {dim for dim, _ in rows}
    if not rows or len(dims) != 1:
        if len(dims) > 1:
            logger.error("Member %s has %s embeddings of several dimensions %s; template dropped.",
                         member_id, model_name, sorted(dims))
        Template.objects.filter(member_id=member_id, model_name=model_name).delete()
        return None
    dim = dims.pop()
    vectors = normalize_rows(np.stack([vector_from_bytes(v, dim) for _, v in rows])).astype(np.float64)
    template, _ = Template.objects.update_or_create(
        member_id=member_id, model_name=model_name,
        defaults={"dim": dim, "count": len(vectors),
                  "vector": vector_to_bytes(vectors.mean(axis=0).astype(np.float32))},
    )
    return template


def _write_faces(member_id: int, prepared: list[_Prepared], names: list[str], model_name: str,
                 dim: int) -> Template:
    """Rows for the accepted photos and the template update (member row locked)."""
    for item, name in zip(prepared, names):
        face = FaceSample.objects.create(
            member_id=member_id, photo=name, image_width=item.width, image_height=item.height,
            box_x=item.box[0], box_y=item.box[1], box_w=item.box[2], box_h=item.box[3],
            landmarks=[[float(x), float(y)] for x, y in item.landmarks],
            detection_score=item.score, detection=item.detection,
        )
        Embedding.objects.create(face=face, model_name=model_name, dim=dim,
                                 vector=vector_to_bytes(item.embedding))
        item.outcome.ok, item.outcome.face_id = True, face.pk
    return _template_add(member_id, model_name, dim, np.stack([p.embedding for p in prepared]))


def _delete_faces_locked(member_id: int, face_ids: Iterable[int] | None = None) -> list[str]:
    """Delete faces (all of the member's when ``face_ids`` is None); returns their file names."""
    faces = FaceSample.objects.filter(member_id=member_id)
    if face_ids is not None:
        faces = faces.filter(pk__in=list(face_ids))
    names = list(faces.values_list("photo", flat=True))
    faces.delete()
    return names


# ------------------------------------------------------------------------------- services


def member_create(*, display_name: str, photos: Sequence[PhotoSource] = (),
                  external_id: str | None = None, notes: str = "", is_active: bool = True,
                  progress: Progress | None = None, actor: Any = None) -> EnrolmentResult:
    """Create a member from enrolment photos (one face per photo: the largest).

    Photos without a face or that cannot be read are reported in ``result.outcomes``; when
    photos are given and none is usable, nothing is created and NoFace / InvalidImage is raised
    (carrying the outcomes). With no photos, a member without faces is created. ``actor`` (the
    user, or None for the system) is recorded in the audit log, as in every service here.
    """
    display_name = (display_name or "").strip()
    if not display_name:
        raise InvalidInput("A member needs a display name.")
    external_id = (external_id or "").strip() or None
    if external_id and external_id_taken(external_id):
        raise DuplicateExternalId(f"A member with external id {external_id!r} already exists.",
                                  details={"external_id": external_id})
    photos = list(photos)
    outcomes: list[PhotoOutcome] = []
    prepared: list[_Prepared] = []
    model_name, dim = "", 0
    if photos:
        recognizer = engine_recognizer()
        model_name, dim = recognizer.model_name, recognizer.dim
        outcomes, prepared = _prepare_photos(photos, recognizer, progress)
        _raise_if_nothing_usable(outcomes, prepared)
    names = _store_files(prepared)
    try:
        with transaction.atomic():
            try:
                with transaction.atomic():
                    member = Member.objects.create(display_name=display_name, external_id=external_id,
                                                   notes=notes or "", is_active=is_active)
            except IntegrityError:
                raise DuplicateExternalId(f"A member with external id {external_id!r} already exists.",
                                          details={"external_id": external_id}) from None
            template = None
            if prepared:
                # Locking the fresh row costs nothing and keeps one rule for every template write.
                _lock_member(member.pk)
                template = _write_faces(member.pk, prepared, names, model_name, dim)
                _bump_gallery_version()
            audit_record(action=AuditEntry.Action.CREATE, member_id=member.pk, member_name=display_name,
                         actor=actor, changes={"display_name": display_name, "external_id": external_id,
                                               "is_active": is_active, "face_ids": [o.face_id for o in outcomes if o.ok],
                                               "model_name": model_name})
    except Exception:
        _delete_files(names)
        raise
    logger.info("Member %s created with %d face(s); %d photo(s) refused.", member.pk,
                len(prepared), len(outcomes) - len(prepared))
    return EnrolmentResult(member=member, outcomes=outcomes, model_name=model_name,
                           template_count=template.count if template else 0)


def member_add_faces(*, member: Member | int, photos: Sequence[PhotoSource], mode: str = "average",
                     progress: Progress | None = None, actor: Any = None) -> EnrolmentResult:
    """Add enrolment photos to a member.

    ``mode="average"`` folds the new faces into the template (add_embds); ``mode="replace"``
    drops every earlier face, file and template first (update_customs). If no photo is usable,
    NoFace / InvalidImage is raised and nothing changes, not even in replace mode.
    """
    if mode not in MODES:
        raise InvalidInput(f"mode must be one of {MODES}, got {mode!r}.")
    member_id = _member_id(member)
    if not Member.objects.filter(pk=member_id).exists():
        raise MemberNotFound(f"No member with id {member_id}.", details={"member_id": member_id})
    photos = list(photos)
    if not photos:
        raise InvalidInput("No photos were given.")
    recognizer = engine_recognizer()
    outcomes, prepared = _prepare_photos(photos, recognizer, progress)
    _raise_if_nothing_usable(outcomes, prepared)
    names = _store_files(prepared)
    try:
        with transaction.atomic():
            locked = _lock_member(member_id)
            old_names: list[str] = []
            if mode == "replace":
                old_names = _delete_faces_locked(member_id)
                # Every model's template described the old faces only.
                Template.objects.filter(member_id=member_id).delete()
            template = _write_faces(member_id, prepared, names, recognizer.model_name, recognizer.dim)
            _bump_gallery_version()
            audit_record(action=AuditEntry.Action.ADD_FACES, member_id=member_id, member_name=locked.display_name,
                         actor=actor, changes={"mode": mode, "face_ids": [p.outcome.face_id for p in prepared],
                                               "replaced_faces": len(old_names),
                                               "model_name": recognizer.model_name})
            if old_names:
                transaction.on_commit(partial(_delete_files, old_names))
    except Exception:
        _delete_files(names)
        raise
    logger.info("Member %s: %d face(s) added (%s); %d photo(s) refused.", member_id,
                len(prepared), mode, len(outcomes) - len(prepared))
    return EnrolmentResult(member=locked, outcomes=outcomes, model_name=recognizer.model_name,
                           template_count=template.count)


_UNSET: Any = object()


def member_update(*, member: Member | int, display_name: str = _UNSET, external_id: str | None = _UNSET,
                  notes: str = _UNSET, is_active: bool = _UNSET, actor: Any = None) -> Member:
    """Change a member's details; activating or deactivating changes the gallery."""
    member_id = _member_id(member)
    with transaction.atomic():
        locked = _lock_member(member_id)
        before = {name: getattr(locked, name) for name in ("display_name", "external_id", "notes", "is_active")}
        changed = []
        if display_name is not _UNSET:
            display_name = (display_name or "").strip()
            if not display_name:
                raise InvalidInput("A member needs a display name.")
            locked.display_name = display_name
            changed.append("display_name")
        if external_id is not _UNSET:
            locked.external_id = (external_id or "").strip() or None
            if locked.external_id and external_id_taken(locked.external_id, exclude_id=member_id):
                raise DuplicateExternalId(f"A member with external id {locked.external_id!r} already exists.",
                                          details={"external_id": locked.external_id})
            changed.append("external_id")
        if notes is not _UNSET:
            locked.notes = notes or ""
            changed.append("notes")
        activity_changed = is_active is not _UNSET and bool(is_active) != locked.is_active
        if is_active is not _UNSET:
            locked.is_active = bool(is_active)
            changed.append("is_active")
        if changed:
            try:
                with transaction.atomic():
                    locked.save(update_fields=[*changed, "updated_at"])
            except IntegrityError:
                raise DuplicateExternalId(f"A member with external id {locked.external_id!r} already exists.",
                                          details={"external_id": locked.external_id}) from None
        if activity_changed:
            _bump_gallery_version()
        # Only the values that really changed: [before, after] each.
        diff = {name: [before[name], getattr(locked, name)] for name in changed
                if before[name] != getattr(locked, name)}
        if diff:
            audit_record(action=AuditEntry.Action.UPDATE, member_id=member_id, member_name=locked.display_name,
                         actor=actor, changes=diff)
    return locked


def member_delete(*, member: Member | int, actor: Any = None) -> None:
    """Delete a member with every face sample, embedding, template, upload and file.

    The gallery version changes in the same transaction, so no worker's next search can
    return the member; the files go once the deletion has committed.
    """
    member_id = _member_id(member)
    with transaction.atomic():
        locked = _lock_member(member_id)
        names = list(FaceSample.objects.filter(member_id=member_id).values_list("photo", flat=True))
        uploads = [n for n in PhotoUpload.objects.filter(member_id=member_id).values_list("file", flat=True) if n]
        snapshot = {"display_name": locked.display_name, "external_id": locked.external_id, "faces": len(names)}
        locked.delete()
        _bump_gallery_version()
        audit_record(action=AuditEntry.Action.DELETE, member_id=member_id, member_name=snapshot["display_name"],
                     actor=actor, changes=snapshot)
        transaction.on_commit(partial(_delete_files, names + uploads))
    logger.info("Member %s deleted with %d face(s).", member_id, len(names))


def face_delete(*, faces: Iterable[FaceSample | int], actor: Any = None) -> int:
    """Delete face samples (their embeddings and files) and recompute the members' templates."""
    face_ids = {f.pk if isinstance(f, FaceSample) else int(f) for f in faces}
    by_member: dict[int, list[int]] = defaultdict(list)
    for face_id, member_id in FaceSample.objects.filter(pk__in=face_ids).values_list("id", "member_id"):
        by_member[member_id].append(face_id)
    deleted = 0
    # One member at a time, in id order: the same lock order in every transaction.
    for member_id in sorted(by_member):
        with transaction.atomic():
            try:
                locked = _lock_member(member_id)
            except MemberNotFound:
                continue  # deleted meanwhile, faces and all
            models = set(Template.objects.filter(member_id=member_id).values_list("model_name", flat=True))
            models |= set(Embedding.objects.filter(face_id__in=by_member[member_id])
                          .values_list("model_name", flat=True))
            names = _delete_faces_locked(member_id, by_member[member_id])
            deleted += len(names)
            for model_name in models:
                _template_rebuild(member_id, model_name)
            _bump_gallery_version()
            audit_record(action=AuditEntry.Action.DELETE_FACES, member_id=member_id,
                         member_name=locked.display_name, actor=actor,
                         changes={"face_ids": sorted(by_member[member_id])})
            transaction.on_commit(partial(_delete_files, names))
    return deleted


def member_recompute_embeddings(*, member: Member | int, model_name: str | None = None,
                                actor: Any = None) -> RecomputeResult:
    """Embed every stored face of a member again with a model (the active one by default).

    For a model change: the stored landmarks are re-used (the face is the same), the new
    model's vectors are written beside the old model's, and its template is rebuilt.
    """
    from recognition.engine.recognizer import Face

    member_id = _member_id(member)
    if not Member.objects.filter(pk=member_id).exists():
        raise MemberNotFound(f"No member with id {member_id}.", details={"member_id": member_id})
    recognizer = engine_recognizer(model_name)
    result = RecomputeResult(member_id=member_id, model_name=recognizer.model_name)
    storage = _photo_field().storage
    vectors: dict[int, np.ndarray] = {}
    for face in FaceSample.objects.filter(member_id=member_id).order_by("id"):
        try:
            with storage.open(face.photo.name, "rb") as handle:
                rgb = recognizer.load(handle.read())
            found = Face(face.box, face.detection_score, np.asarray(face.landmarks, np.float32))
            vectors[face.pk] = recognizer.embed_faces(rgb, [found])[0]
        except (OSError, EngineError) as exc:
            result.failed.append({"face_id": face.pk, "code": getattr(exc, "code", "file_missing"),
                                  "message": str(exc)})
    with transaction.atomic():
        locked = _lock_member(member_id)
        alive = set(FaceSample.objects.filter(member_id=member_id, pk__in=list(vectors))
                    .values_list("id", flat=True))
        for face_id in alive:
            Embedding.objects.update_or_create(
                face_id=face_id, model_name=recognizer.model_name,
                defaults={"dim": recognizer.dim, "vector": vector_to_bytes(vectors[face_id])},
            )
        template = _template_rebuild(member_id, recognizer.model_name)
        _bump_gallery_version()
        audit_record(action=AuditEntry.Action.RECOMPUTE, member_id=member_id, member_name=locked.display_name,
                     actor=actor, changes={"model_name": recognizer.model_name, "embedded": len(alive),
                                           "failed": [f["face_id"] for f in result.failed]})
    result.embedded = len(alive)
    result.template_count = template.count if template else 0
    return result


# ------------------------------------------------------------------------------- uploads (admin)


def member_upload_photos(*, member: Member | int, files: Iterable[Any], mode: str = "average",
                         actor: Any = None) -> list[PhotoUpload]:
    """Stage uploaded photos for a member and queue the engine work after the commit.

    The files are saved under generated names; ``members.tasks.process_uploads_task`` runs
    ``member_add_faces`` on them, and each upload row keeps its outcome for the admin to show.
    """
    from .tasks import process_uploads_task

    if mode not in MODES:
        raise InvalidInput(f"mode must be one of {MODES}, got {mode!r}.")
    member_id = _member_id(member)
    uploads = []
    staged: list[str] = []  # files written so far: removed if the request fails (a full disk)
    try:
        with transaction.atomic():
            _lock_member(member_id)
            for upload in files:
                name = os.path.basename(str(getattr(upload, "name", "") or ""))[:255]
                row = PhotoUpload(member_id=member_id, original_name=name, mode=mode,
                                  uploaded_by=actor if getattr(actor, "is_authenticated", False) else None)
                if hasattr(upload, "seek"):
                    upload.seek(0)
                data = upload.read(settings.FACESITE_MAX_UPLOAD_BYTES + 1)
                ext = _staged_extension(data)  # from the content, never from the uploaded name
                row.file.save(f"upload.{ext}", ContentFile(data), save=False)
                staged.append(row.file.name)
                row.save()
                uploads.append(row)
            ids = [u.pk for u in uploads]
            if ids:
                transaction.on_commit(lambda: process_uploads_task.delay(ids))
    except Exception:
        _delete_files(staged, PhotoUpload._meta.get_field("file").storage)
        raise
    return uploads


def _staged_extension(data: bytes) -> str:
    try:
        return _image_format(data)
    except Exception:  # noqa: BLE001 - not an image: staged as .bin, the worker reports why
        return "bin"


def uploads_process(*, upload_ids: Sequence[int]) -> dict:
    """Run the engine on staged uploads (the task's body). Idempotent: a row is claimed by a
    conditional update from pending to processing, so a redelivered task skips it."""
    claimed: list[PhotoUpload] = []
    for upload_id in upload_ids:
        if PhotoUpload.objects.filter(pk=upload_id, status=PhotoUpload.Status.PENDING).update(
                status=PhotoUpload.Status.PROCESSING):
            claimed.append(PhotoUpload.objects.get(pk=upload_id))
        else:
            logger.info("Upload %s is gone or already claimed; skipped.", upload_id)
    summary = {"claimed": len(claimed), "added": 0, "failed": 0}
    groups: dict[tuple[int, str, int | None], list[PhotoUpload]] = defaultdict(list)
    for upload in claimed:
        groups[(upload.member_id, upload.mode, upload.uploaded_by_id)].append(upload)
    storage = PhotoUpload._meta.get_field("file").storage
    for (member_id, mode, _uploader), uploads in groups.items():
        photos = []
        for upload in uploads:
            try:
                with storage.open(upload.file.name, "rb") as handle:
                    photos.append((upload.original_name or upload.file.name, handle.read()))
            except OSError:
                photos.append((upload.original_name, b""))
        outcomes: list[PhotoOutcome]
        try:
            outcomes = member_add_faces(member=member_id, photos=photos, mode=mode,
                                        actor=uploads[0].uploaded_by).outcomes
        except EnrolmentFailed as exc:
            outcomes = exc.outcomes
        except MemberNotFound:
            logger.info("Member %s was deleted before its uploads were processed.", member_id)
            continue
        except Exception:
            # Not left in "processing" for ever: the row says it failed, the log says why.
            PhotoUpload.objects.filter(pk__in=[u.pk for u in uploads]).update(
                status=PhotoUpload.Status.FAILED, code="internal_error",
                message="The photos could not be processed; see the worker log.", finished_at=timezone.now())
            raise
        for upload, outcome in zip(uploads, outcomes):
            upload.status = PhotoUpload.Status.DONE if outcome.ok else PhotoUpload.Status.FAILED
            upload.code, upload.message = outcome.code or "", outcome.message or ""
            upload.face_id, upload.finished_at = outcome.face_id, timezone.now()
            staged, upload.file = upload.file.name, ""
            upload.save(update_fields=["status", "code", "message", "face", "finished_at", "file"])
            _delete_files([staged], storage)
            summary["added" if outcome.ok else "failed"] += 1
    return summary


# ------------------------------------------------------------------------------- folders


def bulk_permissions(on_existing: str) -> tuple[str, ...]:
    """The permissions a bulk enrolment needs. Its report says which folders were already members
    (a read of the gallery: view); adding to or replacing their faces changes them (change),
    exactly as ``POST /members/{id}/faces`` would."""
    needed = ("members.add_member", "members.view_member")
    if on_existing != "skip":
        needed += ("members.change_member",)
    return needed


def check_bulk_permission(actor: Any, on_existing: str) -> None:
    """Refuse a bulk enrolment the actor may not do. ``actor=None`` is the operator's own shell
    (``manage.py enroll_folder``), who may do anything."""
    if actor is None:
        return
    missing = [perm for perm in bulk_permissions(on_existing) if not actor.has_perm(perm)]
    if missing:
        raise PermissionRefused(f"Bulk enrolment with on_existing={on_existing} needs the permissions "
                                f"{', '.join(bulk_permissions(on_existing))}.", details={"missing": missing})


def folder_enroll(*, root: str | os.PathLike, on_existing: str = "skip",
                  progress: Progress | None = None, actor: Any = None) -> FolderSummary:
    """Enrol one member per sub-folder of ``root`` (its name, underscores as spaces, is the
    display name; the folder name is the external id, so a second run finds the same members).

    ``on_existing``: "skip" members already enrolled (the default: re-runs resume), "add" the
    photos to them (averaging), or "replace" their faces. Every file that gave no face is listed
    in the summary with the reason.
    """
    if on_existing not in ON_EXISTING:
        raise InvalidInput(f"on_existing must be one of {ON_EXISTING}, got {on_existing!r}.")
    check_bulk_permission(actor, on_existing)
    root = Path(root)
    if not root.is_dir():
        raise InvalidInput(f"{root} is not a folder.")
    summary = FolderSummary(root=str(root), on_existing=on_existing)
    for path in sorted(root.iterdir()):
        if path.name.startswith("."):
            continue
        if not path.is_dir():
            summary.skipped_files.append(SkippedFile(path.name, "not_in_person_folder",
                                                     "Photos must be in one sub-folder per person."))
            if progress:
                progress(1)
            continue
        files = person_files(path)
        _enroll_person(path, files, root, on_existing, summary, progress, actor)
    logger.info("Folder %s enrolled: %s", root, {k: v for k, v in summary.as_dict().items()
                                                  if k != "skipped_files"})
    return summary


def person_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file()
                  and not any(part.startswith(".") for part in p.relative_to(folder).parts))


def _enroll_person(folder: Path, files: list[Path], root: Path, on_existing: str,
                   summary: FolderSummary, progress: Progress | None, actor: Any = None) -> None:
    external_id = folder.name
    if not files:
        summary.skipped_files.append(SkippedFile(folder.name + "/", "empty_folder", "The folder has no files."))
        return
    if len(external_id) > Member._meta.get_field("external_id").max_length:
        summary.members_failed += 1
        summary.skipped_files.extend(SkippedFile(str(f.relative_to(root)), "invalid_input",
                                                 "The folder name is too long for an external id.")
                                     for f in files)
        if progress:
            progress(len(files))
        return
    existing = Member.objects.filter(external_id__iexact=external_id).values_list("id", flat=True).first()
    try:
        if existing is None:
            result = member_create(display_name=folder.name.replace("_", " ").strip() or folder.name,
                                   external_id=external_id, photos=files, progress=progress, actor=actor)
            summary.members_created += 1
        elif on_existing == "skip":
            summary.members_skipped += 1
            if progress:
                progress(len(files))
            return
        else:
            result = member_add_faces(member=existing, photos=files, progress=progress, actor=actor,
                                      mode="average" if on_existing == "add" else "replace")
            summary.members_updated += 1
        outcomes = result.outcomes
    except EnrolmentFailed as exc:
        summary.members_failed += 1
        outcomes = exc.outcomes
    except DuplicateExternalId:
        summary.members_skipped += 1  # enrolled by someone else meanwhile
        return
    for item, outcome in zip(files, outcomes):
        if outcome.ok:
            summary.photos_added += 1
        else:
            summary.skipped_files.append(SkippedFile(str(item.relative_to(root)), outcome.code or "error",
                                                     outcome.message or ""))


# ------------------------------------------------------------------------------- identification


def identify_faces(*, image: Any, k: int | None = None, threshold: float | None = None,
                   match: str | None = None) -> list["Recognition"]:
    """Every face of a photo with its best member (``label`` = member id) or None (unknown).

    Each result carries the similarity, the margin to the second-best member and the top-k
    candidates; use ``selectors.member_names`` for the names. Image errors are the engine's
    (``recognition.engine.errors.ImageError`` with a stable ``code``).
    """
    recognizer = engine_recognizer()
    gallery = gallery_for_model(model_name=recognizer.model_name, dim=recognizer.dim, match=match)
    if threshold is None:
        threshold = identification_threshold(model_name=recognizer.model_name)
    k = k or int(gallery_settings()["TOP_K"])
    return recognizer.recognize(image, gallery, threshold, k=k)


# ------------------------------------------------------------------------------- old names


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
