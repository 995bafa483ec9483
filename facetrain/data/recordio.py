"""insightface RecordIO packs (``train.rec`` + ``train.idx``) in pure Python, no MXNet.

MS1M, Glint360K and WebFace come as MXNet RecordIO files. Each record on disk is

    uint32 magic 0xced7230a | uint32 lrecord | payload | zero padding to 4 bytes

where ``lrecord`` packs the continuation flag (top 3 bits) and the payload length (low 29).
dmlc's writer splits a payload wherever the magic word occurs at a 4-byte-aligned offset
(dropping those 4 bytes) so a reader resynchronising on magic never lands mid-record: flag 0 is
a whole record, 1 starts a split one, 2 continues it and 3 ends it; the reader puts the magic
back between parts. The payload starts with MXNet's ``IRHeader``, struct ``IfQQ``
(flag, label, id, id2); when flag > 0, ``flag`` float32 labels follow it and ``label`` is unused.
Then comes the encoded image (JPEG/PNG), empty for metadata records.

insightface convention: record 0 is a header whose labels ``(a, b)`` say images are records
``1 .. a-1`` and identity records ``a .. b-1`` (one per class, each with labels (start, end)
of its images), so there are ``b - a`` classes. The ``.idx`` file maps keys to byte offsets,
one ``key<TAB>offset`` per line.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

__all__ = [
    "MAGIC",
    "FacePack",
    "IRHeader",
    "RecordIOReader",
    "pack_record",
    "unpack_record",
    "write_recordio",
]

MAGIC = 0xCED7230A
_MAGIC_BYTES = struct.pack("<I", MAGIC)
_LENGTH_MASK = (1 << 29) - 1
_HEADER = struct.Struct("<IfQQ")


@dataclass(frozen=True)
class IRHeader:
    flag: int
    label: float | tuple[float, ...]
    id: int
    id2: int

    @property
    def labels(self) -> tuple[float, ...]:
        return self.label if isinstance(self.label, tuple) else (self.label,)


def pack_record(header: IRHeader, data: bytes = b"") -> bytes:
    """An IRHeader (with its label array when there are several labels) followed by ``data``."""
    labels = header.labels
    if len(labels) > 1:
        head = _HEADER.pack(len(labels), 0.0, header.id, header.id2) + struct.pack(f"<{len(labels)}f", *labels)
    else:
        head = _HEADER.pack(0, float(labels[0]), header.id, header.id2)
    return head + bytes(data)


def unpack_record(payload: bytes) -> tuple[IRHeader, bytes]:
    """(header, encoded image bytes) from one record payload."""
    if len(payload) < _HEADER.size:
        raise ValueError(f"record of {len(payload)} bytes is shorter than an IRHeader ({_HEADER.size})")
    flag, label, id_, id2 = _HEADER.unpack_from(payload)
    offset = _HEADER.size
    if flag > 0:
        end = offset + 4 * flag
        if len(payload) < end:
            raise ValueError(f"record says {flag} labels but holds only {len(payload) - offset} bytes after its header")
        labels = struct.unpack_from(f"<{flag}f", payload, offset)
        return IRHeader(flag, tuple(labels), id_, id2), payload[end:]
    return IRHeader(0, label, id_, id2), payload[offset:]


def _write_chunk(handle: BinaryIO, flag: int, chunk: bytes) -> None:
    handle.write(_MAGIC_BYTES)
    handle.write(struct.pack("<I", (flag << 29) | len(chunk)))
    handle.write(chunk)
    handle.write(b"\0" * (-len(chunk) % 4))


def _write_record(handle: BinaryIO, payload: bytes) -> None:
    """One logical record, split at aligned magic words the way dmlc's RecordIOWriter does."""
    if len(payload) > _LENGTH_MASK:
        raise ValueError(f"record of {len(payload)} bytes exceeds RecordIO's 2^29 - 1 limit")
    parts, start = [], 0
    for pos in range(0, len(payload) - 3, 4):
        if payload[pos : pos + 4] == _MAGIC_BYTES:
            parts.append(payload[start:pos])
            start = pos + 4
    parts.append(payload[start:])
    if len(parts) == 1:
        _write_chunk(handle, 0, payload)
        return
    for i, part in enumerate(parts):
        _write_chunk(handle, 1 if i == 0 else (3 if i == len(parts) - 1 else 2), part)


class RecordIOReader:
    """Random access to a ``.rec`` file through its ``.idx``; also iterable in file order."""

    def __init__(self, rec_path: Path, idx_path: Path | None = None) -> None:
        self.rec_path = Path(rec_path)
        self.idx_path = Path(idx_path) if idx_path else self.rec_path.with_suffix(".idx")
        self.offsets: dict[int, int] = {}
        if self.idx_path.is_file():
            for number, line in enumerate(self.idx_path.read_text().splitlines(), start=1):
                if not line.strip():
                    continue
                fields = line.split()
                if len(fields) != 2:
                    raise ValueError(f"{self.idx_path} line {number}: expected 'key offset', got {line!r}")
                self.offsets[int(fields[0])] = int(fields[1])
        self._handle: BinaryIO = self.rec_path.open("rb")

    def close(self) -> None:
        self._handle.close()

    def __enter__(self) -> RecordIOReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def keys(self) -> list[int]:
        return sorted(self.offsets)

    def read_idx(self, key: int) -> bytes:
        if key not in self.offsets:
            raise KeyError(f"{self.idx_path} has no record {key}")
        self._handle.seek(self.offsets[key])
        payload = self._read_next()
        if payload is None:
            raise ValueError(f"{self.rec_path}: no record at offset {self.offsets[key]}")
        return payload

    def __iter__(self) -> Iterator[bytes]:
        self._handle.seek(0)
        while (payload := self._read_next()) is not None:
            yield payload

    def _read_next(self) -> bytes | None:
        parts: list[bytes] = []
        while True:
            head = self._handle.read(8)
            if not head:
                if parts:
                    raise ValueError(f"{self.rec_path}: file ends inside a split record")
                return None
            if len(head) < 8:
                raise ValueError(f"{self.rec_path}: truncated record header")
            magic, lrecord = struct.unpack("<II", head)
            if magic != MAGIC:
                raise ValueError(f"{self.rec_path}: bad magic {magic:#x} at offset {self._handle.tell() - 8}")
            flag, length = lrecord >> 29, lrecord & _LENGTH_MASK
            chunk = self._handle.read(length)
            if len(chunk) < length:
                raise ValueError(f"{self.rec_path}: truncated record payload")
            self._handle.seek(-length % 4, 1)
            parts.append(chunk)
            if flag in (0, 3):
                return _MAGIC_BYTES.join(parts)
            if flag not in (1, 2):
                raise ValueError(f"{self.rec_path}: unknown continuation flag {flag}")


class FacePack:
    """An insightface face pack: ``len()`` images, ``classes`` identities, ``sample(i)``."""

    def __init__(self, rec_path: Path, idx_path: Path | None = None) -> None:
        self.reader = RecordIOReader(rec_path, idx_path)
        header, _ = unpack_record(self.reader.read_idx(0))
        if header.flag > 0 and len(header.labels) >= 2:
            first_identity, end_identity = int(header.labels[0]), int(header.labels[1])
            self.image_keys = list(range(1, first_identity))
            self.classes: int | None = end_identity - first_identity
        else:
            # A pack without the identity header: every indexed record is an image.
            self.image_keys = list(self.reader.keys())
            self.classes = None

    def __len__(self) -> int:
        return len(self.image_keys)

    def sample(self, i: int) -> tuple[bytes, int]:
        """(encoded image, class id) of the i-th image."""
        header, image = unpack_record(self.reader.read_idx(self.image_keys[i]))
        return image, int(header.labels[0])

    def __iter__(self) -> Iterator[tuple[bytes, int]]:
        for i in range(len(self)):
            yield self.sample(i)

    def count_classes(self) -> int:
        """The number of identities, from the header or (packs without one) the labels."""
        if self.classes is None:
            self.classes = 1 + max((label for _, label in self), default=-1)
        return self.classes

    def close(self) -> None:
        self.reader.close()


def write_recordio(rec_path: Path, samples: Iterable[tuple[bytes, int]], idx_path: Path | None = None) -> int:
    """Write an insightface-style pack from (encoded image, class id) samples; returns the count.

    Samples of one class need not be adjacent; the identity records list each class's image
    range only when they are (insightface's own readers use them for sampling, not labels).
    """
    rec_path = Path(rec_path)
    idx_path = Path(idx_path) if idx_path else rec_path.with_suffix(".idx")
    samples = list(samples)
    labels = [int(label) for _, label in samples]
    classes = 1 + max(labels, default=-1)
    if any(label < 0 for label in labels):
        raise ValueError("class ids must be non-negative")
    first_identity = len(samples) + 1
    ranges: dict[int, tuple[int, int]] = {}
    for key, label in enumerate(labels, start=1):
        start, end = ranges.get(label, (key, key))
        ranges[label] = (start, key + 1)
    offsets = []
    with rec_path.open("wb") as handle:

        def put(payload: bytes) -> None:
            offsets.append(handle.tell())
            _write_record(handle, payload)

        put(pack_record(IRHeader(2, (float(first_identity), float(first_identity + classes)), 0, 0)))
        for key, (image, label) in enumerate(samples, start=1):
            put(pack_record(IRHeader(0, float(label), key, 0), image))
        for label in range(classes):
            start, end = ranges.get(label, (0, 0))
            put(pack_record(IRHeader(2, (float(start), float(end)), first_identity + label, 0)))
    idx_path.write_text("".join(f"{key}\t{offset}\n" for key, offset in enumerate(offsets)))
    return len(samples)
