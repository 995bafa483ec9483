"""The tf.data input pipeline: decode, resize, flip, normalise, shuffle, batch, prefetch.

Every source is first reduced to a dataset of (encoded image bytes, class id); this module
turns that into training batches of float32 NHWC images in the engine's convention,
(x - 127.5) / 128 on RGB, and int32 labels.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

import tensorflow as tf

from .convention import MEAN, STD
from .folder import IdentityFolder, scan_identities
from .recordio import FacePack
from .tfrecord import read_tfrecord_meta, tfrecord_dataset

__all__ = [
    "MEAN",
    "STD",
    "TrainingData",
    "batches",
    "folder_source",
    "open_training_data",
    "preprocess",
    "recordio_source",
]


@dataclass
class TrainingData:
    """A source of (encoded image, label) pairs plus its size."""

    # Cheap keys (file paths, record indices, or already-parsed examples), unshuffled and finite;
    # ``load`` maps one key to (encoded image, int32 label). Shuffling the keys before loading
    # keeps a full shuffle cheap even for millions of images.
    keys: tf.data.Dataset
    load: object
    examples: int
    classes: int
    kind: str
    names: list[str] = field(default_factory=list)
    # Whether the source can be shuffled in full before decoding (file lists, indexed packs);
    # a streamed TFRecord is shuffled through a buffer instead.
    indexable: bool = True


def folder_source(folder: IdentityFolder) -> TrainingData:
    files = tf.constant([str(p) for p in folder.files])
    labels = tf.constant(folder.labels, tf.int32)
    keys = tf.data.Dataset.from_tensor_slices((files, labels))
    return TrainingData(
        keys,
        lambda path, label: (tf.io.read_file(path), label),
        len(folder),
        folder.classes,
        "folder",
        list(folder.names),
    )


def recordio_source(rec_path: Path, idx_path: Path | None = None) -> TrainingData:
    pack = FacePack(rec_path, idx_path)
    lock = threading.Lock()  # one file handle, read from tf.data's worker threads

    def read(index):
        with lock:
            image, label = pack.sample(int(index))
        return image, label

    def lookup(index):
        image, label = tf.numpy_function(read, [index], (tf.string, tf.int64), stateful=False)
        image.set_shape([])
        return image, tf.cast(tf.reshape(label, []), tf.int32)

    return TrainingData(tf.data.Dataset.range(len(pack)), lookup, len(pack), pack.count_classes(), "recordio")


def open_training_data(
    path: Path, *, min_images: int = 1, aligned_cache: Path | None = None, aligner=None, progress=lambda items: items
) -> TrainingData:
    """Open a training set by what ``path`` holds.

    * ``train.rec`` (or a folder with one, plus its ``.idx``): an insightface RecordIO pack;
    * ``*.tfrecord`` files (or a folder of them) with their JSON sidecars;
    * otherwise a folder per identity; with ``aligner`` photos are aligned into
      ``aligned_cache`` first, without one they are taken as already-aligned crops.
    """
    path = Path(path)
    if path.is_dir() and (path / "train.rec").is_file():
        path = path / "train.rec"
    if path.suffix == ".rec":
        return recordio_source(path)
    records = [path] if path.suffix == ".tfrecord" else sorted(path.glob("*.tfrecord")) if path.is_dir() else []
    if records:
        meta = read_tfrecord_meta(records)
        return TrainingData(
            tfrecord_dataset(records),
            lambda image, label: (image, label),
            meta["examples"],
            meta["classes"],
            "tfrecord",
            indexable=False,
        )
    folder = scan_identities(path, min_images=min_images)
    if aligner is not None:
        from .folder import align_identities

        folder = align_identities(
            folder, path, aligned_cache or path.parent / f"{path.name}-aligned", aligner, progress
        )
    return folder_source(folder)


def preprocess(image_bytes, input_size: int, *, flip: bool):
    """Encoded image -> float32 (size, size, 3) in the engine's convention, maybe mirrored."""
    image = tf.io.decode_image(image_bytes, channels=3, expand_animations=False)
    image.set_shape([None, None, 3])
    image = tf.image.resize(image, [input_size, input_size], antialias=True)
    image = (tf.cast(image, tf.float32) - MEAN) / STD
    if flip:
        image = tf.image.random_flip_left_right(image)
    return image


def batches(
    data: TrainingData,
    *,
    batch_size: int,
    input_size: int,
    shuffle: bool = True,
    flip: bool = True,
    repeat: bool = True,
    seed: int | None = None,
    shuffle_buffer: int = 20_000,
) -> tf.data.Dataset:
    """Training batches (images, labels); full batches only, so every replica gets equal shares."""
    dataset = data.keys
    if shuffle:
        buffer = data.examples if data.indexable else min(shuffle_buffer, max(data.examples, 1))
        dataset = dataset.shuffle(max(buffer, 1), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        dataset = dataset.repeat()
    dataset = dataset.map(data.load, num_parallel_calls=tf.data.AUTOTUNE)
    dataset = dataset.map(
        lambda image, label: (preprocess(image, input_size, flip=flip), label), num_parallel_calls=tf.data.AUTOTUNE
    )
    dataset = dataset.batch(batch_size, drop_remainder=True)
    return dataset.prefetch(tf.data.AUTOTUNE)
