"""Writes of the members app: enrolling members, adding and replacing their faces, deleting
them, staged uploads, folders and identification. One module per sub-domain; callers import
from here (``from members import services``).

| module | does |
|---|---|
| ``enrolment`` | create, add faces (average / replace), update, delete, delete / confirm faces, re-embed |
| ``photos`` | the engine step: one face per photo, before any transaction |
| ``files`` | the stored photos: written first, removed after the commit |
| ``gallery`` | locked writes: the member row, templates, the version token, external ids |
| ``uploads`` | photos staged for the workers (admin, enrol page, a job's face) |
| ``folders`` | a folder of person folders (``enroll_folder``, the bulk zip) and its permissions |
| ``identification`` | 1:N identification of a photo's faces |
| ``legacy`` | the 2019 project's names: ``add_customs``, ``add_embds``, ``update_customs``, ``del_customs`` |
"""

from __future__ import annotations

from .enrolment import (
    face_delete,
    member_add_faces,
    member_create,
    member_delete,
    member_face_confirm,
    member_recompute_embeddings,
    member_update,
)
from .folders import (
    bulk_permissions,
    check_bulk_permission,
    folder_enroll,
    person_files,
)
from .gallery import external_id_taken
from .identification import Identification, identify, identify_faces
from .legacy import add_customs, add_embds, del_customs, update_customs
from .results import (
    MODES,
    ON_EXISTING,
    EnrolmentResult,
    FolderSummary,
    PhotoOutcome,
    PhotoSource,
    RecomputeResult,
    SkippedFile,
)
from .uploads import member_upload_photos, uploads_process

__all__ = [
    "MODES",
    "ON_EXISTING",
    "EnrolmentResult",
    "FolderSummary",
    "Identification",
    "PhotoOutcome",
    "PhotoSource",
    "RecomputeResult",
    "SkippedFile",
    "add_customs",
    "add_embds",
    "bulk_permissions",
    "check_bulk_permission",
    "del_customs",
    "external_id_taken",
    "face_delete",
    "folder_enroll",
    "identify",
    "identify_faces",
    "member_add_faces",
    "member_create",
    "member_delete",
    "member_face_confirm",
    "member_recompute_embeddings",
    "member_update",
    "member_upload_photos",
    "person_files",
    "update_customs",
    "uploads_process",
]
