"""The pure-Python RecordIO reader and writer on packs the test writes."""

from __future__ import annotations

import struct

import cv2
import numpy as np
import pytest

from facetrain.data.recordio import (
    MAGIC,
    FacePack,
    IRHeader,
    RecordIOReader,
    pack_record,
    unpack_record,
    write_recordio,
)


def jpeg(value: int) -> bytes:
    image = np.full((16, 16, 3), value, np.uint8)
    image[:4, :4] = 255 - value
    ok, data = cv2.imencode(".jpg", image)
    assert ok
    return data.tobytes()


def test_pack_layout_is_mxnet_recordio(tmp_path):
    rec = tmp_path / "train.rec"
    samples = [(jpeg(10), 0), (jpeg(20), 0), (jpeg(30), 1)]
    write_recordio(rec, samples)
    raw = rec.read_bytes()
    # First record: magic, lrecord (flag 0, length), IRHeader "IfQQ" with 2 labels following.
    magic, lrecord = struct.unpack_from("<II", raw, 0)
    assert magic == MAGIC and lrecord >> 29 == 0
    flag, _label, _id, _id2 = struct.unpack_from("<IfQQ", raw, 8)
    assert flag == 2
    first_identity, end_identity = struct.unpack_from("<2f", raw, 8 + 24)
    assert (first_identity, end_identity) == (4.0, 6.0)  # images 1..3, identities 4..5
    # The .idx file holds one "key<TAB>offset" line per record, offsets 4-byte aligned.
    lines = (tmp_path / "train.idx").read_text().splitlines()
    offsets = [int(line.split("\t")[1]) for line in lines]
    assert len(offsets) == 1 + 3 + 2 and offsets[0] == 0 and all(o % 4 == 0 for o in offsets)
    assert struct.unpack_from("<I", raw, offsets[1])[0] == MAGIC


def test_face_pack_round_trip(tmp_path):
    samples = [(jpeg(v), v // 50) for v in range(0, 250, 25)]
    rec = tmp_path / "train.rec"
    assert write_recordio(rec, samples) == len(samples)
    pack = FacePack(rec)
    assert len(pack) == len(samples)
    assert pack.classes == 5
    for i, (image, label) in enumerate(samples):
        assert pack.sample(i) == (image, label)
    # Identity records give each class's image range, as insightface writes them.
    reader = RecordIOReader(rec)
    header, body = unpack_record(reader.read_idx(len(samples) + 1 + 2))
    assert body == b"" and header.labels == (5.0, 7.0)
    pack.close()


def test_payload_containing_the_magic_word_is_split_and_rejoined(tmp_path):
    magic = struct.pack("<I", MAGIC)
    # The magic at aligned offsets inside the image bytes (header is 24 bytes, so aligned).
    tricky = b"ab" + b"cd" + magic + b"xyzw" + magic + magic + b"tail!"
    rec = tmp_path / "t.rec"
    write_recordio(rec, [(tricky, 0), (b"plain", 0)])
    raw = rec.read_bytes()
    flags = []
    pos = 0
    while pos < len(raw):
        m, lrec = struct.unpack_from("<II", raw, pos)
        assert m == MAGIC
        flags.append(lrec >> 29)
        length = lrec & ((1 << 29) - 1)
        pos += 8 + length + (-length % 4)
    assert flags[1:5] == [1, 2, 2, 3]  # one logical record written in four parts
    pack = FacePack(rec)
    assert pack.sample(0) == (tricky, 0)
    assert pack.sample(1) == (b"plain", 0)
    assert list(RecordIOReader(rec))[1].endswith(tricky)


def test_multi_label_header_round_trip():
    header = IRHeader(3, (1.0, 2.5, -4.0), 9, 11)
    parsed, body = unpack_record(pack_record(header, b"img"))
    assert parsed == header and body == b"img"
    single, body = unpack_record(pack_record(IRHeader(0, 7.0, 1, 0), b"x"))
    assert single.labels == (7.0,) and body == b"x"


def test_corrupt_files_are_reported(tmp_path):
    rec = tmp_path / "bad.rec"
    write_recordio(rec, [(jpeg(1), 0)])
    data = bytearray(rec.read_bytes())
    data[0] ^= 0xFF
    rec.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="bad magic"):
        FacePack(rec)
    rec.write_bytes(bytes(data[:6]))
    with pytest.raises(ValueError):
        list(RecordIOReader(rec))
