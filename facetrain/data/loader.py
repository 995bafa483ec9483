"""Training batches as numpy arrays, decoded with OpenCV in worker processes: no TensorFlow.

The JAX path (and any backend) trains from this loader; the TensorFlow-only trainer keeps its
tf.data pipeline (``pipeline.py``), which is also the only reader of TFRecord files.

* A source (``FolderSamples``, ``RecordIOSamples``) says how many samples there are and reads
  one (encoded bytes, label) by index. It is pickled once into each worker, and a RecordIO
  source opens its own file handle there (handles are never shared between processes).
* Batch ``k`` of the stream is fixed by ``seed`` and ``k`` alone: epoch ``k // batches_per_epoch``
  visits the samples in the order of a permutation drawn from (seed, epoch), and the flips of
  batch ``k`` come from (seed, k). So a resumed run continues the same stream, whichever worker
  decodes which batch.
* Workers are started with ``spawn`` (forking a process that already runs JAX's or
  TensorFlow's threads can deadlock). ``prefetch`` batches are kept in flight, so decoding
  overlaps the training step.

Batches are float32 NHWC in the engine's convention ((x - 127.5) / 128 on RGB) and int32 labels;
only full batches, so every device gets an equal share.
"""

from __future__ import annotations

import multiprocessing
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import cv2
import numpy as np

from .convention import MEAN, STD
from .folder import IdentityFolder

if TYPE_CHECKING:
    from multiprocessing.pool import Pool

    from .recordio import FacePack

__all__ = ["BatchLoader", "FolderSamples", "RecordIOSamples", "SampleSource", "decode_face", "open_samples"]


class SampleSource(Protocol):
    """What the loader needs of a training set: a length, a class count and random reads."""

    kind: str
    classes: int
    names: list[str]

    def __len__(self) -> int: ...

    def read(self, index: int) -> tuple[bytes, int]: ...


class FolderSamples:
    """Crops in a folder per identity (already aligned: see ``folder.align_identities``)."""

    kind = "folder"

    def __init__(self, folder: IdentityFolder) -> None:
        self.files = [str(path) for path in folder.files]
        self.labels = np.asarray(folder.labels, np.int32)
        self.names = list(folder.names)
        self.classes = folder.classes

    def __len__(self) -> int:
        return len(self.files)

    def read(self, index: int) -> tuple[bytes, int]:
        return Path(self.files[index]).read_bytes(), int(self.labels[index])


class RecordIOSamples:
    """An insightface ``train.rec`` + ``train.idx``; each process opens the pack itself."""

    kind = "recordio"

    def __init__(self, rec_path: Path, idx_path: Path | None = None) -> None:
        from .recordio import FacePack

        self.rec_path, self.idx_path = Path(rec_path), Path(idx_path) if idx_path else None
        pack = FacePack(self.rec_path, self.idx_path)
        self.length, self.classes = len(pack), pack.count_classes()
        pack.close()
        self.names: list[str] = []
        self._pack: FacePack | None = None

    def __len__(self) -> int:
        return self.length

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_pack": None}

    def read(self, index: int) -> tuple[bytes, int]:
        if self._pack is None:
            from .recordio import FacePack

            self._pack = FacePack(self.rec_path, self.idx_path)
        image, label = self._pack.sample(int(index))
        return image, int(label)


def open_samples(path: Path, *, min_images: int = 1) -> SampleSource:
    """A RecordIO pack (``train.rec`` or its folder) or a folder of aligned crops per identity.

    TFRecord files are read by the TensorFlow pipeline only: convert them, or train on the
    TensorFlow trainer.
    """
    from .folder import scan_identities

    path = Path(path)
    if path.is_dir() and (path / "train.rec").is_file():
        path = path / "train.rec"
    if path.suffix == ".rec":
        return RecordIOSamples(path)
    if path.suffix == ".tfrecord" or (path.is_dir() and any(path.glob("*.tfrecord"))):
        raise ValueError(
            f"{path}: TFRecord data needs TensorFlow's pipeline; the numpy loader reads RecordIO or folders"
        )
    return FolderSamples(scan_identities(path, min_images=min_images))


def decode_face(data: bytes, size: int) -> np.ndarray:
    """Encoded image -> uint8 RGB (size, size, 3), area-resized when it is not that size yet."""
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError("could not decode a training image")
    if image.shape[:2] != (size, size):
        image = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


# ---------------------------------------------------------------- the worker side

_WORKER: dict = {}


def _init_worker(source: SampleSource, size: int) -> None:
    cv2.setNumThreads(1)  # one process per core already
    _WORKER["source"], _WORKER["size"] = source, size


def _load(source: SampleSource, size: int, indices: np.ndarray, flips: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    images = np.empty((len(indices), size, size, 3), np.uint8)
    labels = np.empty(len(indices), np.int32)
    for slot, (index, flip) in enumerate(zip(indices, flips, strict=True)):
        data, labels[slot] = source.read(int(index))
        face = decode_face(data, size)
        images[slot] = face[:, ::-1] if flip else face
    return images, labels


def _load_in_worker(task: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    return _load(_WORKER["source"], _WORKER["size"], *task)


# ---------------------------------------------------------------- the loader


class BatchLoader:
    """An endless, reproducible stream of (images, labels) batches from ``source``.

    ``workers=0`` decodes in the calling process (tests, debugging). Use as a context manager
    or call ``close()`` to stop the workers.
    """

    def __init__(
        self,
        source: SampleSource,
        *,
        batch_size: int,
        input_size: int,
        flip: bool = True,
        shuffle: bool = True,
        seed: int = 0,
        workers: int | None = None,
        prefetch: int = 4,
        start_batch: int = 0,
    ) -> None:
        if batch_size < 1 or len(source) < batch_size:
            raise ValueError(f"batch size {batch_size} needs at least that many samples; the source has {len(source)}")
        self.source, self.batch_size, self.input_size = source, batch_size, input_size
        self.flip, self.shuffle, self.seed = flip, shuffle, seed
        self.batches_per_epoch = len(source) // batch_size
        self.next_batch = start_batch
        self.prefetch = max(prefetch, 1)
        self.workers = min(multiprocessing.cpu_count(), 8) if workers is None else workers
        self._pool: Pool | None = None
        self._pending: deque[Any] = deque()
        self._order_epoch, self._order = -1, np.arange(len(source))

    def _order_of(self, epoch: int) -> np.ndarray:
        if epoch != self._order_epoch:
            self._order_epoch = epoch
            count = len(self.source)
            rng = np.random.default_rng([self.seed, epoch])
            self._order = rng.permutation(count) if self.shuffle else np.arange(count)
        return self._order

    def task(self, batch: int) -> tuple[np.ndarray, np.ndarray]:
        """(sample indices, flip flags) of batch number ``batch`` of the stream."""
        epoch, position = divmod(batch, self.batches_per_epoch)
        start = position * self.batch_size
        indices = self._order_of(epoch)[start : start + self.batch_size]
        if self.flip:
            flips = np.random.default_rng([self.seed, 1_000_003, batch]).random(self.batch_size) < 0.5
        else:
            flips = np.zeros(self.batch_size, bool)
        return indices, flips

    def _submit(self) -> None:
        task = self.task(self.next_batch)
        self.next_batch += 1
        if self._pool is None:
            self._pending.append(_load(self.source, self.input_size, *task))
        else:
            self._pending.append(self._pool.apply_async(_load_in_worker, (task,)))

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        return self

    def __next__(self) -> tuple[np.ndarray, np.ndarray]:
        if self.workers > 0 and self._pool is None:
            context = multiprocessing.get_context("spawn")
            self._pool = context.Pool(self.workers, _init_worker, (self.source, self.input_size))
        target = self.prefetch if self._pool is not None else 1
        while len(self._pending) < target:
            self._submit()
        item = self._pending.popleft()
        images, labels = item if isinstance(item, tuple) else item.get()
        if self._pool is not None:
            self._submit()  # keep the queue full while the caller trains on this batch
        return (images.astype(np.float32) - MEAN) / STD, labels

    def close(self) -> None:
        if self._pool is not None:
            self._pool.terminate()
            self._pool.join()
            self._pool = None
        self._pending.clear()

    def __enter__(self) -> BatchLoader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
