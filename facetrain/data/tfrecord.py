"""TFRecord packs of (encoded image, class id) examples, with a JSON sidecar for the counts.

Each example has ``image/encoded`` (bytes, JPEG or PNG) and ``image/class`` (int64). The
sidecar ``<file>.json`` records how many examples and classes the file holds, so training
needs no pass over the data to size the classifier.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import tensorflow as tf

__all__ = ["FEATURES", "read_tfrecord_meta", "tfrecord_dataset", "write_tfrecord"]

FEATURES = {
    "image/encoded": tf.io.FixedLenFeature([], tf.string),
    "image/class": tf.io.FixedLenFeature([], tf.int64),
}


def _example(image: bytes, label: int) -> bytes:
    feature = {
        "image/encoded": tf.train.Feature(bytes_list=tf.train.BytesList(value=[bytes(image)])),
        "image/class": tf.train.Feature(int64_list=tf.train.Int64List(value=[int(label)])),
    }
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def write_tfrecord(path: Path, samples: Iterable[tuple[bytes, int]]) -> dict:
    """Write the samples and the sidecar; returns the sidecar's content."""
    path = Path(path)
    count, classes = 0, 0
    with tf.io.TFRecordWriter(str(path)) as writer:
        for image, label in samples:
            writer.write(_example(image, label))
            count += 1
            classes = max(classes, int(label) + 1)
    meta = {"examples": count, "classes": classes}
    Path(f"{path}.json").write_text(json.dumps(meta))
    return meta


def read_tfrecord_meta(paths: list[Path]) -> dict:
    """Summed counts from the sidecars (classes: the largest)."""
    examples, classes = 0, 0
    for path in paths:
        sidecar = Path(f"{path}.json")
        if not sidecar.is_file():
            raise FileNotFoundError(f"{sidecar} not found: write TFRecords with write_tfrecord()")
        meta = json.loads(sidecar.read_text())
        examples += int(meta["examples"])
        classes = max(classes, int(meta["classes"]))
    return {"examples": examples, "classes": classes}


def _parse(serialized):
    parsed = tf.io.parse_single_example(serialized, FEATURES)
    return parsed["image/encoded"], tf.cast(parsed["image/class"], tf.int32)


def tfrecord_dataset(paths: list[Path]) -> tf.data.Dataset:
    """(encoded image, class id) pairs from the files, read in parallel."""
    files = [str(p) for p in paths]
    dataset = tf.data.TFRecordDataset(files, num_parallel_reads=min(len(files), 8) or None)
    return dataset.map(_parse, num_parallel_calls=tf.data.AUTOTUNE)
