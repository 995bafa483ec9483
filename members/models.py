"""Members, their face photos, the embeddings of those faces and one template per model.

Rows are written only by ``members.services``; the admin, pages, API and tasks all call it.
Vectors are float32 little-endian bytes and always name their model and dimension: vectors of
different models live side by side (during a model change) but are never compared.
"""

from __future__ import annotations

import uuid

import numpy as np
from django.conf import settings
from django.db import models

from facesite.uploads import generated_name

VECTOR_DTYPE = np.dtype("<f4")


def face_photo_path(instance: FaceSample, filename: str) -> str:
    """A generated name under MEDIA_ROOT: the uploaded name is never used (no path traversal).

    ``filename`` is only ever ``photo.<ext>`` built by the services from the sniffed format.
    """
    return generated_name("members/faces", filename)


class Member(models.Model):
    display_name = models.CharField(max_length=200, db_index=True)
    # An id from another system (a badge number, an HR id); unique when given.
    external_id = models.CharField(max_length=100, unique=True, null=True, blank=True)
    notes = models.TextField(blank=True)
    # Inactive members stay in the database but are left out of the gallery.
    is_active = models.BooleanField(default=True, db_index=True)
    # The member's identity across servers: a backup restored twice, or on another server,
    # finds the same member by it (members.backup).
    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["display_name", "id"]

    def __str__(self) -> str:
        return self.display_name


class FaceSample(models.Model):
    """One enrolment photo of a member and the face found in it (the largest one)."""

    class Status(models.TextChoices):
        OK = "ok"
        FLAGGED = "flagged"  # far from the member's other faces: out of the template
        CONFIRMED = "confirmed"  # staff said it is the member: in the template, never flagged again

    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="faces")
    photo = models.FileField(upload_to=face_photo_path, max_length=255)
    # The photo's size upright (after EXIF orientation), the frame the box and landmarks use.
    image_width = models.PositiveIntegerField()
    image_height = models.PositiveIntegerField()
    box_x = models.FloatField()
    box_y = models.FloatField()
    box_w = models.FloatField()
    box_h = models.FloatField()
    landmarks = models.JSONField(help_text="Five [x, y] points: eyes, nose, mouth corners.")
    detection_score = models.FloatField()
    # "detected" (normal pass) or "second_pass" (found only by the harder pass).
    detection = models.CharField(max_length=20, default="detected")  # the pass that found it
    detector = models.CharField(max_length=20, default="mtcnn")  # the detector that found it
    # The quality record (faceengine.quality); null where unknown (faces enrolled before it).
    eye_distance = models.FloatField(null=True, blank=True, help_text="Pixels between the eyes.")
    sharpness = models.FloatField(null=True, blank=True, help_text="Laplacian variance of the aligned crop.")
    yaw = models.FloatField(null=True, blank=True)
    pitch = models.FloatField(null=True, blank=True)
    roll = models.FloatField(null=True, blank=True)
    quality_warnings = models.JSONField(default=list, blank=True, help_text="Warning codes, e.g. blurry.")
    # Whether the face looks like the member's other faces (members.services.outliers): a
    # flagged face is left out of the template until staff confirm it.
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OK, db_index=True)
    # The leave-one-out cosine to the mean of the member's other faces and its model; null with
    # fewer than 2 other faces of that model.
    outlier_similarity = models.FloatField(null=True, blank=True)
    outlier_model = models.CharField(max_length=100, blank=True)
    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)  # as Member.uuid
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["member_id", "id"]

    @property
    def box_size(self) -> float:
        return float(min(self.box_w, self.box_h))

    @property
    def in_template(self) -> bool:
        return self.status != FaceSample.Status.FLAGGED

    def __str__(self) -> str:
        return f"face {self.pk} of member {self.member_id}"

    @property
    def box(self) -> tuple[float, float, float, float]:
        return (self.box_x, self.box_y, self.box_w, self.box_h)


class Embedding(models.Model):
    face = models.ForeignKey(FaceSample, on_delete=models.CASCADE, related_name="embeddings")
    model_name = models.CharField(max_length=100)
    dim = models.PositiveIntegerField()
    vector = models.BinaryField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["face", "model_name"], name="members_embedding_one_per_model"),
        ]
        indexes = [models.Index(fields=["model_name", "dim"], name="members_emb_model_idx")]

    def __str__(self) -> str:
        return f"{self.model_name} embedding of face {self.face_id}"

    def as_array(self) -> np.ndarray:
        return vector_from_bytes(self.vector, self.dim)


class Template(models.Model):
    """The mean of a member's normalised embeddings for one model, and how many went into it.

    Updated only with the member row locked (``select_for_update``) inside the transaction that
    writes the embeddings, so concurrent enrolments of one member cannot lose each other's faces.
    """

    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="templates")
    model_name = models.CharField(max_length=100)
    dim = models.PositiveIntegerField()
    vector = models.BinaryField()
    count = models.PositiveIntegerField()
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["member", "model_name"], name="members_template_one_per_model"),
        ]
        indexes = [models.Index(fields=["model_name", "dim"], name="members_tpl_model_idx")]

    def __str__(self) -> str:
        return f"{self.model_name} template of member {self.member_id} ({self.count} faces)"

    def as_array(self) -> np.ndarray:
        return vector_from_bytes(self.vector, self.dim)


def upload_path(instance: PhotoUpload, filename: str) -> str:
    """A generated name for a staged upload (removed once the worker has processed it)."""
    return generated_name("members/uploads", filename, shard=False)


class PhotoUpload(models.Model):
    """A photo uploaded for a member (the admin) and waiting for, or done with, the engine.

    The task claims a row by moving it from pending to processing with a conditional update,
    so a redelivered task does nothing twice; the outcome stays visible on the member's page.
    """

    class Status(models.TextChoices):
        PENDING = "pending"
        PROCESSING = "processing"
        DONE = "done"
        FAILED = "failed"

    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="uploads")
    file = models.FileField(upload_to=upload_path, max_length=255, blank=True)
    original_name = models.CharField(max_length=255, blank=True, help_text="Shown only, never used as a path.")
    mode = models.CharField(max_length=10, default="average")
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PENDING, db_index=True)
    code = models.CharField(max_length=50, blank=True)
    message = models.TextField(blank=True)
    face = models.ForeignKey(FaceSample, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    # Who uploaded it: the audit entry of the faces added later by the worker names them.
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"upload {self.pk} for member {self.member_id} ({self.status})"


class GalleryVersion(models.Model):
    """One row whose token changes in every transaction that changes what the gallery holds.

    Each worker process compares it with the token its cached index was built at; a random
    token (rather than a counter) cannot come back to an old value after a rollback or restore.
    """

    token = models.CharField(max_length=32)
    changed_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.token


class GalleryLogHead(models.Model):
    """One row: the last sequence number handed to a gallery change, and how far the change log
    has been pruned. Writers increment ``seq`` with the row locked until their commit, so the
    numbers are handed out in commit order (see members.services.gallery_log); ``epoch`` is new
    whenever the row is created again (a database emptied or restored), so no worker mistakes a
    new log for the one its index followed."""

    seq = models.BigIntegerField(default=0)
    pruned_through = models.BigIntegerField(default=0)
    epoch = models.CharField(max_length=32)

    def __str__(self) -> str:
        return f"{self.epoch}:{self.seq}"


class GalleryChange(models.Model):
    """A committed change of a member's vectors (templates and sample embeddings, every model):
    a worker's index re-reads that member's rows. ``member_id`` None: anything may have changed
    (a restore), every index is rebuilt. No foreign key: a deleted member's entry stays."""

    seq = models.BigIntegerField(db_index=True)
    member_id = models.BigIntegerField(null=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.seq}: member {self.member_id}"


class AuditEntry(models.Model):
    """Who changed which member, how and when; written by members.services in the transaction
    of the change itself, so an entry exists exactly when the change committed.

    The member is kept as an id and a name snapshot, not a foreign key: the entry of a deletion
    outlives the member. The actor likewise is a nullable key plus a snapshot of the username.
    """

    class Action(models.TextChoices):
        CREATE = "create"
        UPDATE = "update"
        DELETE = "delete"
        ADD_FACES = "add_faces"
        DELETE_FACES = "delete_faces"
        RECOMPUTE = "recompute"
        RESTORE = "restore"
        CONFIRM_FACES = "confirm_faces"

    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    actor_repr = models.CharField(max_length=150, help_text="The username then, or “system”.")
    action = models.CharField(max_length=20, choices=Action.choices, db_index=True)
    member_id = models.BigIntegerField(db_index=True)
    member_name = models.CharField(max_length=200)
    changes = models.JSONField(default=dict, blank=True)
    request_id = models.CharField(max_length=128, blank=True, help_text="The X-Request-ID of the change.")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "audit entry"
        verbose_name_plural = "audit log"

    def __str__(self) -> str:
        return f"{self.actor_repr} {self.action} member {self.member_id} ({self.member_name})"


def vector_to_bytes(vector: np.ndarray) -> bytes:
    return np.ascontiguousarray(vector, dtype=VECTOR_DTYPE).tobytes()


def vector_from_bytes(data: bytes | memoryview, dim: int) -> np.ndarray:
    vector = np.frombuffer(bytes(data), dtype=VECTOR_DTYPE)
    if vector.shape != (dim,):
        raise ValueError(f"A stored vector has {vector.size} values, expected {dim}.")
    return vector.astype(np.float32)
