"""Backup and restore of the gallery: members, their face photos, embeddings and templates.

One zip archive, so a model change or a move to another server loses nothing::

    manifest.json                      format, version, models (name -> dim), members and faces
    photos/<face uuid>.<ext>           each enrolment photo, byte for byte (its SHA-256 in the manifest)
    vectors/<model>/embeddings.npy     float32 (faces x dim), row i = manifest row i of that model
    vectors/<model>/templates.npy      float32 (templates x dim)

``gallery_import`` checks the whole archive first (zip integrity, manifest, shapes and finite
values of every vector, every photo's hash and image format, model dimensions against this
server) and only then writes: the photos under generated names, then every row in one
transaction. Members and faces are found again by their uuid, so importing an archive twice
changes nothing the second time. A restored member keeps its exact template vectors, so
identification gives the same results; ``reembed`` also embeds every restored face with the
active model (``member_recompute_embeddings``), for a restore after a model change.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import re
import tempfile
import uuid as uuid_lib
import zipfile
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
from django.conf import settings
from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone

from facesite.files import stored_name
from facesite.uploads import PHOTO_EXTENSIONS

from .audit import audit_record
from .errors import MemberError
from .models import AuditEntry, Embedding, FaceSample, Member, Template, vector_to_bytes

logger = logging.getLogger(__name__)

FORMAT, VERSION = "facesite-gallery", 1
MANIFEST = "manifest.json"
_MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_MEMBER_KEYS = ("uuid", "display_name", "external_id", "notes", "is_active", "faces", "templates")
_FACE_KEYS = (
    "uuid",
    "photo",
    "sha256",
    "image_width",
    "image_height",
    "box",
    "landmarks",
    "detection_score",
    "detection",
    "embeddings",
)


# The quality record of a face (optional in a face entry: archives written before it restore
# as "quality unknown, status ok").
QUALITY_FIELDS = ("eye_distance", "sharpness", "yaw", "pitch", "roll", "quality_warnings")


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if np.isfinite(number) else None


def _restored_quality(face: dict) -> dict[str, Any]:
    """The quality and outlier fields of a manifest face entry, checked; defaults where absent."""
    raw = face.get("quality")
    quality: dict[str, Any] = raw if isinstance(raw, dict) else {}
    fields: dict[str, Any] = {name: _number(quality.get(name)) for name in QUALITY_FIELDS[:-1]}
    warnings = quality.get("quality_warnings")
    fields["quality_warnings"] = [str(w)[:30] for w in warnings][:10] if isinstance(warnings, list) else []
    status = face.get("status")
    fields["status"] = status if status in FaceSample.Status.values else FaceSample.Status.OK
    fields["outlier_similarity"] = _number(face.get("outlier_similarity"))
    fields["outlier_model"] = str(face.get("outlier_model") or "")[:100]
    return fields


class BackupError(MemberError):
    """The archive cannot be restored (corrupt, truncated, inconsistent); nothing was changed."""

    code = "invalid_backup"


@dataclass
class ExportSummary:
    path: str
    members: int = 0
    faces: int = 0
    models: dict[str, dict[str, int]] = field(default_factory=dict)  # name -> dim, embeddings, templates
    bytes: int = 0

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class ImportSummary:
    members_created: int = 0
    members_existing: int = 0
    faces_created: int = 0
    faces_existing: int = 0
    embeddings_created: int = 0
    templates_written: int = 0
    models: dict[str, int] = field(default_factory=dict)  # name -> dim
    reembedded: int = 0
    reembed_failed: list[dict] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


# ------------------------------------------------------------------------------- export


def gallery_export(*, out: str | os.PathLike, include_inactive: bool = True) -> ExportSummary:
    """Write every member (or the active ones), face photo, embedding and template to a zip.

    The archive is written beside ``out`` and renamed into place when complete, so a failed
    export never leaves a half archive under the final name.
    """
    out = Path(out)
    members = Member.objects.order_by("id")
    if not include_inactive:
        members = members.filter(is_active=True)
    storage = FaceSample._meta.get_field("photo").storage
    summary = ExportSummary(path=str(out))
    vectors: dict[str, dict[str, list[np.ndarray]]] = {}
    dims: dict[str, int] = {}

    def row(model_name: str, dim: int, kind: str, vector: np.ndarray) -> int:
        if dims.setdefault(model_name, dim) != dim:
            raise BackupError(f"Model {model_name} has vectors of {dims[model_name]} and {dim} values.")
        rows = vectors.setdefault(model_name, {"embeddings": [], "templates": []})[kind]
        rows.append(vector)
        return len(rows) - 1

    manifest_members = []
    fd, tmp_name = tempfile.mkstemp(prefix=".gallery-", suffix=".zip.part", dir=out.parent)
    os.close(fd)
    try:
        with zipfile.ZipFile(tmp_name, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for member in members.iterator():
                faces = []
                for face in (
                    FaceSample.objects.filter(member_id=member.pk).order_by("id").prefetch_related("embeddings")
                ):
                    try:
                        name = stored_name(face.photo)
                        with storage.open(name, "rb") as handle:
                            data = handle.read()
                    except OSError:
                        raise BackupError(
                            f"The photo of face {face.pk} ({face.photo.name}) is missing; "
                            "delete the face or restore the file first."
                        ) from None
                    ext = Path(name).suffix.lstrip(".").lower() or "bin"
                    photo = f"photos/{face.uuid}.{ext}"
                    # Photos are JPEG/PNG already: deflating them again only costs time.
                    archive.writestr(
                        zipfile.ZipInfo(photo, date_time=face.created_at.timetuple()[:6]),
                        data,
                        compress_type=zipfile.ZIP_STORED,
                    )
                    faces.append(
                        {
                            "uuid": str(face.uuid),
                            "photo": photo,
                            "sha256": hashlib.sha256(data).hexdigest(),
                            "image_width": face.image_width,
                            "image_height": face.image_height,
                            "box": list(face.box),
                            "landmarks": face.landmarks,
                            "detection_score": face.detection_score,
                            "detection": face.detection,
                            "detector": face.detector,
                            "quality": {name: getattr(face, name) for name in QUALITY_FIELDS},
                            "status": face.status,
                            "outlier_similarity": face.outlier_similarity,
                            "outlier_model": face.outlier_model,
                            "embeddings": {
                                e.model_name: row(e.model_name, e.dim, "embeddings", e.as_array())
                                for e in face.embeddings.all()
                            },
                        }
                    )
                templates = {
                    t.model_name: {"row": row(t.model_name, t.dim, "templates", t.as_array()), "count": t.count}
                    for t in Template.objects.filter(member_id=member.pk).order_by("model_name")
                }
                manifest_members.append(
                    {
                        "uuid": str(member.uuid),
                        "display_name": member.display_name,
                        "external_id": member.external_id,
                        "notes": member.notes,
                        "is_active": member.is_active,
                        "created_at": member.created_at.isoformat(),
                        "faces": faces,
                        "templates": templates,
                    }
                )
                summary.members += 1
                summary.faces += len(faces)
            for model_name, kinds in vectors.items():
                for kind, rows in kinds.items():
                    buffer = io.BytesIO()
                    matrix = np.stack(rows) if rows else np.zeros((0, dims[model_name]), np.float32)
                    np.save(buffer, matrix.astype("<f4"), allow_pickle=False)
                    archive.writestr(f"vectors/{model_name}/{kind}.npy", buffer.getvalue())
                summary.models[model_name] = {
                    "dim": dims[model_name],
                    "embeddings": len(kinds["embeddings"]),
                    "templates": len(kinds["templates"]),
                }
            manifest = {
                "format": FORMAT,
                "version": VERSION,
                "created_at": timezone.now().isoformat(),
                "models": summary.models,
                "members": manifest_members,
            }
            archive.writestr(MANIFEST, json.dumps(manifest, ensure_ascii=False, indent=1))
        os.replace(tmp_name, out)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    summary.bytes = out.stat().st_size
    logger.info(
        "Gallery exported to %s: %d member(s), %d face(s), models %s.",
        out,
        summary.members,
        summary.faces,
        sorted(summary.models),
    )
    return summary


# ------------------------------------------------------------------------------- import: checks


@dataclass
class _Checked:
    """An archive that passed every check: the manifest, the vectors, the photos' extensions."""

    manifest: dict
    vectors: dict[str, dict[str, np.ndarray]]
    photo_ext: dict[str, str]  # face uuid -> extension of the sniffed format


def _fail(message: str) -> BackupError:
    return BackupError(f"The backup cannot be restored: {message} Nothing was changed.")


def _open_zip(source: str | os.PathLike | IO[bytes]) -> zipfile.ZipFile:
    try:
        archive = zipfile.ZipFile(source)
    except FileNotFoundError:
        raise _fail(f"{source} does not exist.") from None
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError) as exc:
        raise _fail(f"it is not a readable zip archive (truncated or corrupted?): {exc}.") from None
    return archive


def _read(archive: zipfile.ZipFile, name: str, limit: int) -> bytes:
    try:
        info = archive.getinfo(name)
    except KeyError:
        raise _fail(f"{name} is missing from the archive.") from None
    if info.file_size > limit:
        raise _fail(f"{name} is {info.file_size} bytes, over the limit of {limit}.")
    try:
        return archive.read(info)
    except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as exc:
        raise _fail(f"{name} is damaged ({exc}).") from None


def _check_manifest(data: bytes) -> dict:
    try:
        manifest = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise _fail(f"{MANIFEST} is not valid JSON ({exc}).") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise _fail(f"it is not a facesite gallery backup ({MANIFEST} has no format {FORMAT!r}).")
    if manifest.get("version") != VERSION:
        raise _fail(f"backup version {manifest.get('version')!r} is not supported (this server reads {VERSION}).")
    if not isinstance(manifest.get("models"), dict) or not isinstance(manifest.get("members"), list):
        raise _fail(f"{MANIFEST} lacks its models or members.")
    return manifest


def _known_dim(model_name: str) -> int | None:
    """The dimension this server knows for a model: its rows, or the registry; None if unknown."""
    dims = set(Embedding.objects.filter(model_name=model_name).values_list("dim", flat=True).distinct()[:2])
    dims |= set(Template.objects.filter(model_name=model_name).values_list("dim", flat=True).distinct()[:2])
    if dims:
        return dims.pop() if len(dims) == 1 else -1
    from faceengine.embedders.registry import load_model_spec

    try:
        return load_model_spec(model_name, settings.FACESITE_MODEL_DIR).dim
    except Exception:  # noqa: BLE001 - an unknown model is allowed (a warning), not an error
        return None


def _check_vectors(
    archive: zipfile.ZipFile, manifest: dict, summary: ImportSummary
) -> dict[str, dict[str, np.ndarray]]:
    vectors: dict[str, dict[str, np.ndarray]] = {}
    for model_name, info in manifest["models"].items():
        if not isinstance(model_name, str) or not _MODEL_NAME.match(model_name):
            raise _fail(f"model name {model_name!r} is not a valid model name.")
        dim = info.get("dim") if isinstance(info, dict) else None
        if not isinstance(dim, int) or not 0 < dim <= 8192:
            raise _fail(f"model {model_name} has no valid dimension.")
        known = _known_dim(model_name)
        if known is not None and known != dim:
            raise _fail(f"model {model_name} has {dim}-d vectors in the backup but {known}-d on this server.")
        if known is None:
            summary.warnings.append(
                f"Model {model_name} is not known here: its vectors are restored but used "
                "only once the model is installed; --reembed embeds with the active model."
            )
        vectors[model_name] = {}
        for kind in ("embeddings", "templates"):
            name = f"vectors/{model_name}/{kind}.npy"
            data = _read(archive, name, 2 * 1024**3)
            try:
                matrix = np.load(io.BytesIO(data), allow_pickle=False)
            except (ValueError, OSError, EOFError) as exc:
                raise _fail(f"{name} is not a valid .npy array ({exc}).") from None
            if matrix.dtype != np.dtype("<f4") or matrix.ndim != 2 or matrix.shape[1] != dim:
                raise _fail(f"{name} holds {matrix.dtype} {matrix.shape}, expected float32 (n, {dim}).")
            if matrix.shape[0] != info.get(kind):
                raise _fail(f"{name} has {matrix.shape[0]} rows; the manifest says {info.get(kind)}.")
            if not np.isfinite(matrix).all():
                raise _fail(f"{name} holds values that are not finite numbers.")
            vectors[model_name][kind] = matrix
        summary.models[model_name] = dim
    return vectors


def _check_rows(manifest: dict, vectors: dict[str, dict[str, np.ndarray]]) -> None:
    seen: set[str] = set()
    for index, member in enumerate(manifest["members"]):
        if not isinstance(member, dict) or any(key not in member for key in _MEMBER_KEYS):
            raise _fail(f"member {index} of {MANIFEST} lacks some of {', '.join(_MEMBER_KEYS)}.")
        if not str(member["display_name"] or "").strip():
            raise _fail(f"member {index} has no display name.")
        for face in member["faces"]:
            if not isinstance(face, dict) or any(key not in face for key in _FACE_KEYS):
                raise _fail(f"a face of member {member['display_name']!r} lacks some of {', '.join(_FACE_KEYS)}.")
        uuids = [member["uuid"], *(face["uuid"] for face in member["faces"])]
        for value in uuids:
            try:
                uuid_lib.UUID(str(value))
            except ValueError:
                raise _fail(f"{value!r} is not a uuid.") from None
            if value in seen:
                raise _fail(f"uuid {value} appears twice.")
            seen.add(value)
        refs = [(m, r, "embeddings") for f in member["faces"] for m, r in f["embeddings"].items()]
        refs += [(m, t.get("row"), "templates") for m, t in member["templates"].items()]
        for model_name, row, kind in refs:
            if model_name not in vectors or not isinstance(row, int) or not 0 <= row < len(vectors[model_name][kind]):
                raise _fail(
                    f"member {member['display_name']!r} refers to {kind} row {row!r} of model "
                    f"{model_name!r}, which the archive does not hold."
                )


def _check_photos(archive: zipfile.ZipFile, manifest: dict) -> dict[str, str]:
    """Every photo is present, intact (SHA-256) and an image; returns face uuid -> extension."""
    from PIL import Image

    limit = settings.FACESITE_MAX_UPLOAD_BYTES
    extensions = {}
    for member in manifest["members"]:
        for face in member["faces"]:
            data = _read(archive, str(face["photo"]), limit)
            if hashlib.sha256(data).hexdigest() != face["sha256"]:
                raise _fail(f"{face['photo']} does not match its SHA-256 (damaged or altered).")
            try:
                with Image.open(io.BytesIO(data)) as image:
                    extensions[face["uuid"]] = PHOTO_EXTENSIONS.get(image.format or "", "bin")
            except (OSError, ValueError, Image.DecompressionBombError):
                raise _fail(f"{face['photo']} is not an image.") from None
    return extensions


def gallery_check(*, source: str | os.PathLike | IO[bytes]) -> tuple[_Checked, ImportSummary]:
    """Check a whole archive without changing anything; BackupError says what is wrong."""
    summary = ImportSummary()
    with _open_zip(source) as archive:
        bad = _safe_testzip(archive)
        if bad is not None:
            raise _fail(f"{bad} is damaged (CRC mismatch).")
        manifest = _check_manifest(_read(archive, MANIFEST, 512 * 1024**2))
        vectors = _check_vectors(archive, manifest, summary)
        _check_rows(manifest, vectors)
        extensions = _check_photos(archive, manifest)
    return _Checked(manifest, vectors, extensions), summary


def _safe_testzip(archive: zipfile.ZipFile) -> str | None:
    try:
        return archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as exc:
        raise _fail(f"the archive is damaged ({exc}).") from None


# ------------------------------------------------------------------------------- import: writes


def gallery_import(*, source: str | os.PathLike | IO[bytes], actor: Any = None, reembed: bool = False) -> ImportSummary:
    """Restore a backup made by ``gallery_export``; idempotent, all or nothing.

    Members and faces already here (same uuid) are left as they are; new faces of an existing
    member are added and its templates rebuilt from its embeddings. ``reembed`` then embeds every
    restored member's faces with the active model (after a model change).
    """
    from . import services
    from .services import files, gallery

    checked, summary = gallery_check(source=source)
    manifest, vectors = checked.manifest, checked.vectors
    existing_faces = set(
        FaceSample.objects.filter(uuid__in=[f["uuid"] for m in manifest["members"] for f in m["faces"]]).values_list(
            "uuid", flat=True
        )
    )
    new_faces = [
        (m, f) for m in manifest["members"] for f in m["faces"] if uuid_lib.UUID(f["uuid"]) not in existing_faces
    ]
    field_ = FaceSample._meta.get_field("photo")
    stored: dict[str, str] = {}
    try:
        with _open_zip(source) as archive:
            for _member, face in new_faces:
                # A generated name under MEDIA_ROOT: the archive's names are never used as paths.
                # django-stubs wants a Model; Django hands it only to upload_to, which ignores it.
                name = field_.generate_filename(None, f"photo.{checked.photo_ext[face['uuid']]}")  # type: ignore[arg-type]
                # A full disk: the partial file is removed and StorageFull raised (facesite.disk_full).
                stored[face["uuid"]] = field_.storage.save(
                    name, ContentFile(archive.read(face["photo"])), max_length=field_.max_length
                )
        touched: list[int] = []
        with transaction.atomic():
            for entry in manifest["members"]:
                member_id = _restore_member(entry, vectors, stored, actor, summary)
                touched.append(member_id)
            if summary.members_created or summary.faces_created:
                gallery.bump_gallery_version()
    except BaseException:
        files.delete_files(stored.values())
        raise
    if reembed:
        for member_id in touched:
            result = services.member_recompute_embeddings(member=member_id, actor=actor)
            summary.reembedded += result.embedded
            summary.reembed_failed.extend(result.failed)
    logger.info("Gallery restored: %s", {k: v for k, v in summary.as_dict().items() if k != "warnings"})
    return summary


def _restore_member(
    entry: dict, vectors: dict[str, dict[str, np.ndarray]], stored: dict[str, str], actor: Any, summary: ImportSummary
) -> int:
    from .services import gallery

    member = Member.objects.select_for_update().filter(uuid=entry["uuid"]).first()
    external_id = (entry["external_id"] or "").strip() or None
    if member is None and external_id:
        # The same person enrolled separately on this server: restore into that member.
        member = Member.objects.select_for_update().filter(external_id__iexact=external_id).first()
    created = member is None
    if member is None:
        member = Member.objects.create(
            uuid=entry["uuid"],
            display_name=str(entry["display_name"]).strip()[:200],
            external_id=external_id,
            notes=entry["notes"] or "",
            is_active=bool(entry["is_active"]),
        )
        summary.members_created += 1
    else:
        summary.members_existing += 1
    face_uuids = []
    for face in entry["faces"]:
        if face["uuid"] not in stored:
            summary.faces_existing += 1
            continue
        row = FaceSample.objects.create(
            member=member,
            uuid=face["uuid"],
            photo=stored[face["uuid"]],
            image_width=int(face["image_width"]),
            image_height=int(face["image_height"]),
            box_x=float(face["box"][0]),
            box_y=float(face["box"][1]),
            box_w=float(face["box"][2]),
            box_h=float(face["box"][3]),
            landmarks=[[float(x), float(y)] for x, y in face["landmarks"]],
            detection_score=float(face["detection_score"]),
            detection=str(face["detection"])[:20],
            # Archives written before detectors were recorded: MTCNN was the only one.
            detector=str(face.get("detector") or "mtcnn")[:20],
            **_restored_quality(face),
        )
        for model_name, index in face["embeddings"].items():
            Embedding.objects.create(
                face=row,
                model_name=model_name,
                dim=vectors[model_name]["embeddings"].shape[1],
                vector=vector_to_bytes(vectors[model_name]["embeddings"][index]),
            )
            summary.embeddings_created += 1
        face_uuids.append(face["uuid"])
        summary.faces_created += 1
    if created:
        # The exact vectors of the backup: identification answers as it did before.
        for model_name, template in entry["templates"].items():
            Template.objects.create(
                member=member,
                model_name=model_name,
                dim=vectors[model_name]["templates"].shape[1],
                count=int(template["count"]),
                vector=vector_to_bytes(vectors[model_name]["templates"][template["row"]]),
            )
            summary.templates_written += 1
    elif face_uuids:
        # The restored faces meet this server's faces of the member: compare them again.
        gallery.outliers_refresh(member.pk)
        models = set(Embedding.objects.filter(face__member=member).values_list("model_name", flat=True))
        for model_name in sorted(models):
            gallery.template_rebuild(member.pk, model_name)
            summary.templates_written += 1
    if created or face_uuids:
        audit_record(
            action=AuditEntry.Action.RESTORE,
            member_id=member.pk,
            member_name=member.display_name,
            actor=actor,
            changes={"created": created, "face_uuids": face_uuids, "models": sorted(entry["templates"])},
        )
    return member.pk
