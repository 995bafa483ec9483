"""Gallery index snapshots: one file with an index's vectors (as its backend stores them), ids,
the change-log sequence it covers, the model and dimension, and a SHA-256 of it all.

Layout: ``MAGIC``, an 8-byte little-endian header length, a JSON header, then the arrays back to
back (their names, dtypes, shapes and offsets are in the header, with the payload's SHA-256).
A file is written under a temporary name in the same folder, flushed to disk and renamed over
the old one, so a reader sees the old snapshot or the new one, never half of one. Anything that
does not check out (magic, header, sizes, checksum, model, dimension, match mode) raises
:class:`SnapshotError`; the caller then builds from the database instead.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import EngineError
from .index import GalleryIndex, IndexConfig

MAGIC = b"FACESITE-GALLERY-SNAPSHOT\n"
FORMAT = 1


class SnapshotError(EngineError):
    """A snapshot that cannot be used: damaged, of another format, model or gallery."""

    code = "snapshot_invalid"


@dataclass(frozen=True)
class SnapshotInfo:
    """What a snapshot covers (its header, without the arrays)."""

    path: Path
    model_name: str
    dim: int
    match: str
    seq: int
    epoch: str
    backend: str
    vectors: int
    created_at: float


def _raw(blob: np.ndarray) -> memoryview:
    """The bytes of a C-contiguous array, without a copy (empty arrays included)."""
    return blob.reshape(-1).view(np.uint8).data


def write_snapshot(path: Path, index: GalleryIndex, *, seq: int, epoch: str, match: str) -> SnapshotInfo:
    """Write ``index`` (covering change-log sequence ``seq`` of log ``epoch``) atomically."""
    meta, arrays = index.export()
    entries, offset, digest = [], 0, hashlib.sha256()
    blobs = []
    for name, value in arrays.items():
        blob = np.ascontiguousarray(value)
        entries.append(
            {"name": name, "dtype": blob.dtype.str, "shape": list(blob.shape), "offset": offset, "nbytes": blob.nbytes}
        )
        digest.update(_raw(blob))
        offset += blob.nbytes
        blobs.append(blob)
    header = {
        "format": FORMAT,
        "index": meta,
        "match": match,
        "seq": int(seq),
        "epoch": epoch,
        "created_at": time.time(),
        "arrays": entries,
        "payload_bytes": offset,
        "sha256": digest.hexdigest(),
    }
    encoded = json.dumps(header, sort_keys=True).encode()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(MAGIC + struct.pack("<Q", len(encoded)) + encoded)
            for blob in blobs:
                out.write(_raw(blob))
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)  # the rename itself survives a crash
    finally:
        os.close(directory)
    return _info(path, header)


def _info(path: Path, header: dict[str, Any]) -> SnapshotInfo:
    meta = header["index"]
    return SnapshotInfo(
        path=path,
        model_name=str(meta["model"]),
        dim=int(meta["dim"]),
        match=str(header["match"]),
        seq=int(header["seq"]),
        epoch=str(header["epoch"]),
        backend=str(meta["backend"]),
        vectors=int(meta["vectors"]),
        created_at=float(header["created_at"]),
    )


def _read_header(data: bytes | memoryview, path: Path) -> tuple[dict[str, Any], int]:
    if bytes(data[: len(MAGIC)]) != MAGIC:
        raise SnapshotError(f"{path.name} is not a gallery snapshot.", details={"path": str(path)})
    try:
        (length,) = struct.unpack("<Q", bytes(data[len(MAGIC) : len(MAGIC) + 8]))
        start = len(MAGIC) + 8
        header = json.loads(bytes(data[start : start + length]))
        if header["format"] != FORMAT:
            raise SnapshotError(f"{path.name} has snapshot format {header['format']}, this version reads {FORMAT}.")
        _info(path, header)  # every field is there and of its type
    except SnapshotError:
        raise
    except (struct.error, ValueError, KeyError, TypeError) as exc:
        raise SnapshotError(f"{path.name} has a damaged header ({exc}).", details={"path": str(path)}) from None
    return header, start + length


def snapshot_info(path: Path) -> SnapshotInfo:
    """The header of a snapshot, without reading or checking its arrays."""
    path = Path(path)
    with open(path, "rb") as handle:
        head = handle.read(len(MAGIC) + 8)
        if len(head) < len(MAGIC) + 8:
            raise SnapshotError(f"{path.name} is truncated.", details={"path": str(path)})
        (length,) = struct.unpack("<Q", head[len(MAGIC) :])
        header, _ = _read_header(head + handle.read(min(length, 1 << 24)), path)
    return _info(path, header)


def read_snapshot(
    path: Path, *, model_name: str, dim: int, match: str, config: IndexConfig
) -> tuple[GalleryIndex, SnapshotInfo]:
    """The index of a snapshot, checked whole; SnapshotError when it is not the one asked for
    or does not check out."""
    path = Path(path)
    data = path.read_bytes()
    header, start = _read_header(data, path)
    info = _info(path, header)
    if (info.model_name, info.dim, info.match) != (model_name, int(dim), match):
        raise SnapshotError(
            f"{path.name} holds the {info.model_name} ({info.dim}-d, {info.match}) gallery, "
            f"not {model_name} ({dim}-d, {match}).",
            code="snapshot_mismatch",
        )
    payload = memoryview(data)[start:]
    if len(payload) != int(header["payload_bytes"]):
        raise SnapshotError(f"{path.name} is truncated or has extra bytes.", details={"path": str(path)})
    if hashlib.sha256(payload).hexdigest() != header["sha256"]:
        raise SnapshotError(f"{path.name} fails its checksum.", details={"path": str(path)})
    arrays: dict[str, np.ndarray] = {}
    try:
        for entry in header["arrays"]:
            chunk = payload[int(entry["offset"]) : int(entry["offset"]) + int(entry["nbytes"])]
            arrays[entry["name"]] = np.frombuffer(chunk, dtype=np.dtype(entry["dtype"])).reshape(entry["shape"])
        index = GalleryIndex.restore(header["index"], arrays, config)
    except (ValueError, KeyError, TypeError, RuntimeError) as exc:
        raise SnapshotError(f"{path.name} does not describe a usable index ({exc}).") from None
    return index, info
