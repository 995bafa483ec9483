"""Readers for face-verification benchmarks: LFW, CFP (FF/FP) and insightface ``.bin`` packs.

Every reader returns a :class:`PairSet`: a deduplicated image list plus pair indices,
same/different flags and fold ids, so the caller embeds each image once and scores pairs
with :func:`faceengine.evaluation.protocol.kfold_verification`.
"""

from __future__ import annotations

import os
import pickle
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .protocol import assign_folds

__all__ = [
    "LFW_IMAGE_DIRS",
    "ImageRef",
    "PairSet",
    "load_benchmark",
    "read_bin",
    "read_cfp",
    "read_lfw",
]

# Searched in this order. The nested Kaggle layout is listed first because its parent
# folder also exists and would otherwise shadow it.
LFW_IMAGE_DIRS = (
    "lfw-deepfunneled/lfw-deepfunneled",
    "lfw-deepfunneled",
    "lfw_funneled",
    "lfw",
)
LFW_VIEW1_FOLDS = 10
_INT = re.compile(r"^[+-]?\d+$")


@dataclass(frozen=True)
class ImageRef:
    """One benchmark image: a file on disk (``path``) or encoded bytes held in memory (``data``)."""

    key: str
    path: Path | None = None
    data: bytes | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if (self.path is None) == (self.data is None):
            raise ValueError(f"ImageRef {self.key!r} needs exactly one of path or data")

    def read_bytes(self) -> bytes:
        """The encoded image (JPEG/PNG...), from disk or memory."""
        if self.path is not None:
            return self.path.read_bytes()
        if self.data is None:  # ruled out by __post_init__
            raise ValueError(f"ImageRef {self.key!r} has neither path nor data")
        return bytes(self.data)


@dataclass
class PairSet:
    """Pairs of one benchmark; ``pairs[i]`` indexes ``images``."""

    name: str
    images: list[ImageRef]
    pairs: np.ndarray  # (n, 2) int
    same: np.ndarray  # (n,) bool
    folds: np.ndarray  # (n,) int

    def __post_init__(self) -> None:
        self.pairs = np.asarray(self.pairs, dtype=np.int64).reshape(-1, 2)
        self.same = np.asarray(self.same, dtype=bool)
        self.folds = np.asarray(self.folds, dtype=np.int64)
        n = self.pairs.shape[0]
        if self.same.shape != (n,) or self.folds.shape != (n,):
            raise ValueError(f"{self.name}: {n} pairs but same has shape {self.same.shape}, folds {self.folds.shape}")
        if n and (self.pairs.min() < 0 or self.pairs.max() >= len(self.images)):
            raise ValueError(f"{self.name}: pair index out of range for {len(self.images)} images")

    def __len__(self) -> int:
        return int(self.pairs.shape[0])


class _ImageIndex:
    """Collects file images once each, in first-seen order, checking they exist."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.images: list[ImageRef] = []
        self._by_path: dict[Path, int] = {}

    def add(self, path: Path) -> int:
        path = Path(os.path.normpath(path))
        index = self._by_path.get(path)
        if index is None:
            if not path.is_file():
                raise FileNotFoundError(f"image not found: {path}")
            index = len(self.images)
            key = path.relative_to(self.root).as_posix() if path.is_relative_to(self.root) else str(path)
            self.images.append(ImageRef(key=key, path=path))
            self._by_path[path] = index
        return index


# --------------------------------------------------------------------------- LFW


def read_lfw(data_dir: Path, pairs_file: str = "pairs.txt") -> PairSet:
    """Read an LFW pairs list (View 2 ``pairs.txt`` or View 1 ``pairsDev*.txt``).

    With a "n_folds n_per_class" header (View 2) fold k is the k-th block of
    2 * n_per_class lines, as published. Without one (our View 1 copies lack it; a lone
    "N" header is also accepted and skipped) folds are dealt round-robin within each
    class, so each of the 10 folds holds equally many same and different pairs.
    """
    data_dir = Path(data_dir)
    image_dir = _find_lfw_images(data_dir)
    lines = _read_lines(data_dir / pairs_file)
    header, body = _split_lfw_header(lines)
    index = _ImageIndex(image_dir)
    pairs, same = [], []
    for number, fields in body:
        a, b, is_same = _parse_lfw_line(fields, number, pairs_file)
        pairs.append((index.add(_lfw_path(image_dir, *a)), index.add(_lfw_path(image_dir, *b))))
        same.append(is_same)
    same_arr = np.asarray(same, dtype=bool)
    folds = _lfw_header_folds(header, len(body), pairs_file) if header else _round_robin_folds(same_arr)
    name = "lfw" if pairs_file == "pairs.txt" else f"lfw_{Path(pairs_file).stem}"
    return PairSet(name, index.images, np.asarray(pairs, dtype=np.int64).reshape(-1, 2), same_arr, folds)


def _find_lfw_images(data_dir: Path) -> Path:
    for candidate in LFW_IMAGE_DIRS:
        if (data_dir / candidate).is_dir():
            return data_dir / candidate
    raise FileNotFoundError(f"no LFW image folder in {data_dir} (looked for {', '.join(LFW_IMAGE_DIRS)})")


def _read_lines(path: Path) -> list[tuple[int, list[str]]]:
    """Non-blank lines as (1-based line number, whitespace-split fields)."""
    if not path.is_file():
        raise FileNotFoundError(f"pairs file not found: {path}")
    text = path.read_text(encoding="utf-8")
    return [(n, line.split()) for n, line in enumerate(text.splitlines(), start=1) if line.strip()]


def _split_lfw_header(lines: list[tuple[int, list[str]]]) -> tuple[tuple[int, int] | None, list]:
    if not lines:
        raise ValueError("pairs file is empty")
    first = lines[0][1]
    if len(first) == 2 and all(_INT.match(f) for f in first):
        return (int(first[0]), int(first[1])), lines[1:]
    if len(first) == 1 and _INT.match(first[0]):  # original View 1 header: pairs per class
        return None, lines[1:]
    return None, lines


def _parse_lfw_line(fields: list[str], number: int, source: str) -> tuple[tuple[str, int], tuple[str, int], bool]:
    try:
        if len(fields) == 3:
            return (fields[0], int(fields[1])), (fields[0], int(fields[2])), True
        if len(fields) == 4:
            return (fields[0], int(fields[1])), (fields[2], int(fields[3])), False
    except ValueError:
        raise ValueError(f"{source} line {number}: image numbers must be integers: {' '.join(fields)!r}") from None
    raise ValueError(f"{source} line {number}: expected 3 or 4 fields, got {len(fields)}: {' '.join(fields)!r}")


def _lfw_path(image_dir: Path, name: str, number: int) -> Path:
    return image_dir / name / f"{name}_{number:04d}.jpg"


def _lfw_header_folds(header: tuple[int, int], n_pairs: int, source: str) -> np.ndarray:
    n_folds, per_class = header
    if n_folds < 1 or per_class < 1 or n_folds * 2 * per_class != n_pairs:
        raise ValueError(
            f"{source}: header says {n_folds} folds x 2 x {per_class} pairs but the file has {n_pairs} pairs"
        )
    return np.repeat(np.arange(n_folds, dtype=np.int64), 2 * per_class)


def _round_robin_folds(same: np.ndarray, n_folds: int = LFW_VIEW1_FOLDS) -> np.ndarray:
    folds = np.empty(same.shape[0], dtype=np.int64)
    for flag in (True, False):
        members = np.flatnonzero(same == flag)
        folds[members] = np.arange(members.size) % n_folds
    return folds


# --------------------------------------------------------------------------- CFP


def read_cfp(data_dir: Path, protocol: str) -> PairSet:
    """Read CFP (Celebrities in Frontal-Profile) frontal-frontal or frontal-profile pairs.

    Split folder ``01``..``10`` becomes fold 0..9; within a fold the same pairs come
    first. For FF both indices refer to ``Pair_list_F.txt``; for FP the second one
    refers to ``Pair_list_P.txt``.
    """
    protocol = protocol.upper()
    if protocol not in ("FF", "FP"):
        raise ValueError(f"CFP protocol must be 'FF' or 'FP', got {protocol!r}")
    data_dir = Path(data_dir)
    proto_dir = data_dir / "Protocol"
    frontal = _read_cfp_list(proto_dir / "Pair_list_F.txt")
    second = frontal if protocol == "FF" else _read_cfp_list(proto_dir / "Pair_list_P.txt")
    split_dirs = _cfp_split_dirs(proto_dir / "Split" / protocol)
    index = _ImageIndex(Path(os.path.normpath(data_dir)))
    pairs, same, folds = [], [], []
    for fold, split in split_dirs:
        for stem, is_same in (("same", True), ("diff", False)):
            for i, j in _read_cfp_csv(_cfp_pair_file(split, stem), frontal, second):
                pairs.append((index.add(frontal[i]), index.add(second[j])))
                same.append(is_same)
                folds.append(fold)
    return PairSet(
        f"cfp_{protocol.lower()}",
        index.images,
        np.asarray(pairs, dtype=np.int64).reshape(-1, 2),
        np.asarray(same, dtype=bool),
        np.asarray(folds, dtype=np.int64),
    )


def _read_cfp_list(path: Path) -> dict[int, Path]:
    """``index relative_path`` lines -> {index: absolute path}; paths are relative to the list's folder."""
    entries = {}
    for number, fields in _read_lines(path):
        if len(fields) != 2 or not _INT.match(fields[0]):
            raise ValueError(f"{path} line {number}: expected 'index relative_path', got {' '.join(fields)!r}")
        entries[int(fields[0])] = Path(os.path.normpath(path.parent / fields[1]))
    return entries


def _cfp_split_dirs(root: Path) -> list[tuple[int, Path]]:
    if not root.is_dir():
        raise FileNotFoundError(f"CFP split folder not found: {root}")
    dirs = sorted((int(d.name) - 1, d) for d in root.iterdir() if d.is_dir() and d.name.isdigit())
    if not dirs:
        raise FileNotFoundError(f"no numbered split folders (01..10) in {root}")
    return dirs


def _cfp_pair_file(split: Path, stem: str) -> Path:
    """The split's pair file: ``same.txt`` / ``diff.txt`` as the authors distribute CFP, or the
    ``.csv`` names of some copies; both hold one "i,j" line per pair."""
    for suffix in (".txt", ".csv"):
        path = split / f"{stem}{suffix}"
        if path.is_file():
            return path
    raise FileNotFoundError(f"CFP pair file not found: {split / stem}.txt (or .csv)")


def _read_cfp_csv(path: Path, first: dict[int, Path], second: dict[int, Path]) -> list[tuple[int, int]]:
    if not path.is_file():
        raise FileNotFoundError(f"CFP pair file not found: {path}")
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        fields = [f.strip() for f in line.split(",")]
        if len(fields) != 2 or not all(_INT.match(f) for f in fields):
            raise ValueError(f"{path} line {number}: expected 'i,j', got {line.strip()!r}")
        i, j = int(fields[0]), int(fields[1])
        if i not in first or j not in second:
            raise ValueError(f"{path} line {number}: index {i if i not in first else j} is not in the pair list")
        rows.append((i, j))
    return rows


# --------------------------------------------------------------------------- insightface .bin


def read_bin(path: Path) -> PairSet:
    """Read an insightface verification pack (``lfw.bin``, ``agedb_30.bin``, ``cfp_fp.bin``...).

    The file is a Python-2 pickle of ``(bins, issame_list)``: pair i is images 2i and 2i+1.
    Folds are contiguous tenths, as insightface evaluates them.

    Security: unpickling runs arbitrary code from the file. Only use this on benchmark
    files the operator deliberately downloaded and chose, never on uploaded data.
    """
    path = Path(path)
    with path.open("rb") as handle:
        loaded = pickle.load(handle, encoding="bytes")
    if not isinstance(loaded, (tuple, list)) or len(loaded) != 2:
        raise ValueError(f"{path}: expected a pickled (bins, issame_list) pair")
    bins, issame = loaded
    same = np.asarray(list(issame), dtype=bool)
    if len(bins) != 2 * same.size:
        raise ValueError(f"{path}: {len(bins)} images for {same.size} pairs (expected {2 * same.size})")
    images = [ImageRef(key=f"{path.stem}/{i:05d}", data=_as_bytes(b, path, i)) for i, b in enumerate(bins)]
    pairs = np.arange(2 * same.size, dtype=np.int64).reshape(-1, 2)
    return PairSet(path.stem, images, pairs, same, assign_folds(same.size, 10))


def _as_bytes(blob: object, path: Path, i: int) -> bytes:
    if isinstance(blob, np.ndarray):
        return blob.tobytes()
    if isinstance(blob, (bytes, bytearray, memoryview)):
        return bytes(blob)
    raise ValueError(f"{path}: image {i} is a {type(blob).__name__}, not encoded bytes")


# --------------------------------------------------------------------------- dispatch


def load_benchmark(kind: str, data: Path) -> list[PairSet]:
    """Pair sets for a benchmark kind: ``lfw``, ``cfp-fp``, ``cfp-ff`` or ``bin``.

    For ``bin``, ``data`` is one ``.bin`` file or a folder whose ``*.bin`` files are all
    read, in name order.
    """
    data = Path(data)
    kind = kind.lower()
    if kind == "lfw":
        return [read_lfw(data)]
    if kind in ("cfp-fp", "cfp-ff"):
        return [read_cfp(data, kind[-2:].upper())]
    if kind == "bin":
        return [read_bin(p) for p in _bin_files(data)]
    raise ValueError(f"unknown benchmark kind {kind!r}: expected lfw, cfp-fp, cfp-ff or bin")


def _bin_files(data: Path) -> list[Path]:
    if data.is_file():
        return [data]
    if data.is_dir():
        files = sorted(p for p in data.glob("*.bin") if p.is_file())
        if files:
            return files
        raise FileNotFoundError(f"no .bin files in {data}")
    raise FileNotFoundError(f"benchmark path not found: {data}")
