"""A fast MTCNN that finds the same faces as the PyPI package ``mtcnn==1.0.0``.

The package spends most of its time per photo in Keras 3's per-layer call overhead, not in
arithmetic. Here the same three networks, with the package's own weights, run as TFLite
flatbuffers under XNNPACK (backend "tflite") or as ``tf.function`` graphs (backend "tf", what
a GPU worker would run). Everything around them reproduces the package step by step:

* pixels normalised to ``(x - 127.5) / 128`` (by lookup table);
* pyramid scales ``12 / min_face_size * scale_factor ** k`` with the package's level count,
  each level ``int(dim * scale)`` px, area-resized from the original image by the same TF op;
  levels under 12 px are dropped (the package raises on them and swallows the error, so its
  ``min_face_size=40`` finds no faces at all; that bug is deliberately not reproduced);
* P-Net cells ``[2i + 1, 2i + 12]`` regressed by ``11 * reg``, per-level NMS (union, 0.5),
  cross-level NMS (union, 0.7), boxes squared;
* R-Net/O-Net patches cut by ``tf.image.crop_and_resize`` with the package's box
  normalisation, batched;
* the package's NMS, which is not the greedy one: a box is dropped when ANY higher-scored box
  overlaps it beyond the threshold, whether or not that box survived itself;
* box calibration with ``w = x2 - x1 + 1``, landmarks ``w * l + x1 - 1``, O-Net threshold 0.8,
  final NMS by the "min" overlap, boxes clipped to the image (landmarks are not).

Speed comes from running P-Net once per photo: all pyramid levels are packed into one canvas
(at even offsets, so the stride-2 pooling lines up), and a mask input of 0 / -1e9 added after
the first PReLU keeps each level's pooling from seeing its neighbours, so every output cell
inside a level equals what the package computes on that level alone. Canvas sizes are rounded
up so a handful of TFLite interpreters (cached, LRU) serve photos of any aspect ratio.

Nothing here imports TensorFlow at module import; it is loaded when a detector is built.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import threading
import warnings
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from .errors import ModelError

__all__ = ["DetectedFace", "MTCNNDetector"]

# Bump when the graphs below change, so cached flatbuffers are rebuilt.
_GRAPH_VERSION = "3"
_NETS = ("pnet", "rnet", "onet")
_MIN_SIZE = 12  # P-Net's input cell
_CANVAS_ALIGN = 32  # canvas sides are rounded up to this, to reuse interpreters
# P-Net interpreters are kept per canvas shape (LRU). XNNPACK needs ~190 bytes per canvas pixel
# (tensors and indirection buffers), so the cache is bounded by pixels as well as by count:
# 3M px is ~570 MB at most, e.g. the ten canvases of 640-px photos of assorted aspect ratios.
_MAX_CANVASES = 12
_MAX_CACHED_PIXELS = 3_000_000
_BIG_LEVEL = 1_500_000  # levels with more pixels get a canvas of their own
_MASK_OFF = np.float32(-1e9)

# (x - 127.5) / 128 is exact in float32 for every uint8 value.
_NORM_LUT = ((np.arange(256, dtype=np.float64) - 127.5) / 128.0).astype(np.float32)


@dataclass(frozen=True)
class DetectedFace:
    """One face: ``box`` is (x, y, w, h) in input pixels; ``landmarks`` is (5, 2) float32 in the
    package's keypoint order: left eye, right eye, nose, mouth left, mouth right."""

    box: tuple[float, float, float, float]
    score: float
    landmarks: np.ndarray
    detector: str = "mtcnn"  # which detector found it ("mtcnn" or "yunet")


# --------------------------------------------------------------------------- weights and graphs


def _weights_dir() -> Path:
    # find_spec locates the installed package without running its __init__ (which imports TF).
    spec = importlib.util.find_spec("mtcnn")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError("The mtcnn package (its weights) is not installed: pip install mtcnn==1.0.0.")
    return Path(next(iter(spec.submodule_search_locations))) / "assets" / "weights"


def _weight_files() -> dict[str, Path]:
    folder = _weights_dir()
    files = {net: folder / f"{net}.lz4" for net in _NETS}
    missing = [str(p) for p in files.values() if not p.is_file()]
    if missing:
        raise ModelError(f"MTCNN weights not found: {', '.join(missing)}.")
    return files


def _load_weights() -> dict[str, list[np.ndarray]]:
    import joblib  # a dependency of mtcnn; reads its lz4-compressed pickles

    return {net: [np.asarray(w, dtype=np.float32) for w in joblib.load(path)] for net, path in _weight_files().items()}


def _cache_key(tf_version: str) -> str:
    digest = hashlib.sha256()
    for net, path in _weight_files().items():
        digest.update(net.encode())
        digest.update(path.read_bytes())
    digest.update(f"tf={tf_version};graph={_GRAPH_VERSION}".encode())
    return digest.hexdigest()[:16]


def _import_tf():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    return tf


def _build_functions(weights: dict[str, list[np.ndarray]]):
    """The three networks as tf.functions over constants, layer for layer as the package's
    Keras models (Permute((2, 1, 3)) before Flatten included).
    P-Net takes the packed canvas and its mask (see the module docstring)."""
    tf = _import_tf()
    p, r, o = ([tf.constant(a) for a in weights[net]] for net in _NETS)

    def prelu(x, alpha):
        # Keras 3's PReLU, relu(x) + (-alpha) * relu(-x), written in the exact form that the
        # TFLite converter fuses into one PRELU op (bit-identical: x >= 0 ? x : alpha * x).
        return tf.nn.relu(x) + tf.nn.relu(-x) * tf.constant(-alpha.numpy())

    def conv(x, kernel, bias):
        return tf.nn.conv2d(x, kernel, strides=1, padding="VALID") + bias

    def pool(x, size, stride, padding):
        return tf.nn.max_pool2d(x, ksize=size, strides=stride, padding=padding)

    def flatten_hw_swapped(x):
        x = tf.transpose(x, (0, 2, 1, 3))
        return tf.reshape(x, (-1, x.shape[1] * x.shape[2] * x.shape[3]))

    @tf.function(
        input_signature=[
            tf.TensorSpec((None, None, None, 3), tf.float32),
            tf.TensorSpec((None, None, None, 1), tf.float32),
        ]
    )
    def pnet(x, mask):
        x = pool(prelu(conv(x, p[0], p[1]), p[2]) + mask, 2, 2, "SAME")
        x = prelu(conv(x, p[3], p[4]), p[5])
        x = prelu(conv(x, p[6], p[7]), p[8])
        reg = conv(x, p[9], p[10])
        prob = tf.nn.softmax(conv(x, p[11], p[12]), axis=-1)
        return reg, prob

    @tf.function(input_signature=[tf.TensorSpec((None, 24, 24, 3), tf.float32)])
    def rnet(x):
        x = pool(prelu(conv(x, r[0], r[1]), r[2]), 3, 2, "SAME")
        x = pool(prelu(conv(x, r[3], r[4]), r[5]), 3, 2, "VALID")
        x = prelu(conv(x, r[6], r[7]), r[8])
        x = prelu(tf.matmul(flatten_hw_swapped(x), r[9]) + r[10], r[11])
        reg = tf.matmul(x, r[12]) + r[13]
        prob = tf.nn.softmax(tf.matmul(x, r[14]) + r[15], axis=-1)
        return reg, prob

    @tf.function(input_signature=[tf.TensorSpec((None, 48, 48, 3), tf.float32)])
    def onet(x):
        x = pool(prelu(conv(x, o[0], o[1]), o[2]), 3, 2, "SAME")
        x = pool(prelu(conv(x, o[3], o[4]), o[5]), 3, 2, "VALID")
        x = pool(prelu(conv(x, o[6], o[7]), o[8]), 2, 2, "SAME")
        x = prelu(conv(x, o[9], o[10]), o[11])
        x = prelu(tf.matmul(flatten_hw_swapped(x), o[12]) + o[13], o[14])
        reg = tf.matmul(x, o[15]) + o[16]
        landmarks = tf.matmul(x, o[17]) + o[18]
        prob = tf.nn.softmax(tf.matmul(x, o[19]) + o[20], axis=-1)
        return reg, landmarks, prob

    return {"pnet": pnet, "rnet": rnet, "onet": onet}


# Converted flatbuffers per cache key, so several detectors in one process convert once.
_FLATBUFFERS: dict[str, dict[str, bytes]] = {}
_FLATBUFFERS_LOCK = threading.Lock()


def _tflite_models(cache_dir: Path | None) -> dict[str, bytes]:
    tf = _import_tf()
    key = _cache_key(tf.__version__)
    with _FLATBUFFERS_LOCK:
        if key in _FLATBUFFERS:
            return _FLATBUFFERS[key]
        paths = {net: Path(cache_dir) / f"mtcnn-{net}-{key}.tflite" for net in _NETS} if cache_dir else {}
        if paths and all(p.is_file() and p.stat().st_size > 0 for p in paths.values()):
            models = {net: paths[net].read_bytes() for net in _NETS}
        else:
            functions = _build_functions(_load_weights())
            models = {}
            for net in _NETS:
                concrete = functions[net].get_concrete_function()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete], functions[net])
                    models[net] = converter.convert()
            if cache_dir and paths:
                Path(cache_dir).mkdir(parents=True, exist_ok=True)
                for net in _NETS:
                    # Write then rename, so a concurrent process never reads half a file.
                    tmp = paths[net].with_name(f"{paths[net].name}.{os.getpid()}.tmp")
                    tmp.write_bytes(models[net])
                    os.replace(tmp, paths[net])
                # Files of other weights or TF versions are dead: an upgrade should not leave
                # its predecessors behind in the model folder.
                for stale in Path(cache_dir).glob("mtcnn-*-*.tflite"):
                    if not stale.name.endswith(f"-{key}.tflite"):
                        stale.unlink(missing_ok=True)
        _FLATBUFFERS[key] = models
        return models


class _TFLiteNet:
    """An interpreter resized on demand; inputs and outputs told apart by their channel count
    (P-Net: canvas 3, mask 1 -> reg 4, prob 2; R-Net -> reg 4, prob 2; O-Net -> landmarks 10,
    reg 4, prob 2), outputs returned most channels first."""

    def __init__(self, model: bytes, num_threads: int) -> None:
        tf = _import_tf()
        # tf.lite.Interpreter warns that it is deprecated in favour of ai-edge-litert; it still
        # works in TF 2.21 (XNNPACK included) and spares a second runtime, so the warning is
        # silenced here and only here.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.interpreter = tf.lite.Interpreter(model_content=model, num_threads=num_threads)
        inputs = self.interpreter.get_input_details()
        self._inputs = [d["index"] for d in sorted(inputs, key=lambda d: -int(d["shape_signature"][-1]))]
        outputs = self.interpreter.get_output_details()
        self._outputs = [d["index"] for d in sorted(outputs, key=lambda d: -int(d["shape_signature"][-1]))]
        self._shapes: tuple = ()

    def __call__(self, *arrays: np.ndarray) -> list[np.ndarray]:
        shapes = tuple(a.shape for a in arrays)
        if shapes != self._shapes:
            for index, shape in zip(self._inputs, shapes, strict=True):
                self.interpreter.resize_tensor_input(index, shape, strict=False)
            self.interpreter.allocate_tensors()
            self._shapes = shapes
        for index, array in zip(self._inputs, arrays, strict=True):
            self.interpreter.set_tensor(index, array)
        self.interpreter.invoke()
        return [self.interpreter.get_tensor(i) for i in self._outputs]


# --------------------------------------------------------------------------- pyramid and canvas


@dataclass(frozen=True)
class _Level:
    scale: float
    height: int
    width: int
    top: int = 0  # position in its canvas (even)
    left: int = 0

    @property
    def out_shape(self) -> tuple[int, int]:
        # conv 3x3 valid, pool 2x2 "same", conv 3x3, conv 3x3 (all as Keras computes them)
        return (self.height - 1) // 2 - 4, (self.width - 1) // 2 - 4


@dataclass(frozen=True)
class _Canvas:
    height: int
    width: int
    levels: tuple[_Level, ...]


def _pyramid(height: int, width: int, min_face_size: int, scale_factor: float, skip_finest: int = 0) -> list[_Level]:
    """The levels of mtcnn's build_scale_pyramid + scale_images, minus those under 12 px and
    minus the ``skip_finest`` largest ones (the scales of the others are left as they are)."""
    min_dim = min(width, height)
    count = round(-((np.log(min_dim / _MIN_SIZE) / np.log(scale_factor)) + 1))
    scales = (_MIN_SIZE / min_face_size) * scale_factor ** np.arange(max(count, 0))
    scales = scales[skip_finest:]
    levels = []
    for scale in scales:
        h, w = int(height * scale), int(width * scale)
        if min(h, w) >= _MIN_SIZE:
            levels.append(_Level(float(scale), h, w))
    return levels


def _align(n: int) -> int:
    return -(-n // _CANVAS_ALIGN) * _CANVAS_ALIGN


def _skyline(levels: list[_Level], width: int) -> tuple[list[_Level], int] | None:
    """Bottom-left skyline packing at even coordinates; None if a level is wider than width."""
    sky = np.zeros(width, np.int64)
    placed = []
    for level in levels:
        if level.width > width:
            return None
        tops = np.lib.stride_tricks.sliding_window_view(sky, level.width).max(axis=1)[::2]
        tops = tops + (tops & 1)
        i = int(np.argmin(tops))
        top, left = int(tops[i]), 2 * i
        sky[left : left + level.width] = top + level.height
        placed.append(_Level(level.scale, level.height, level.width, top, left))
    return placed, int(sky.max())


def _pack(levels: list[_Level]) -> _Canvas:
    first = levels[0].width
    widths = {first, first + levels[1].width + 1 if len(levels) > 1 else first}
    widths |= {first + levels[2].width + 1} if len(levels) > 2 else set()
    best = None
    for width in sorted(widths):
        width = _align(width)
        packed = _skyline(levels, width)
        if packed is None:
            continue
        placed, height = packed
        canvas = _Canvas(_align(height), width, tuple(placed))
        if best is None or canvas.height * canvas.width < best.height * best.width:
            best = canvas
    if best is None:  # the widest level always fits a canvas of its own width
        raise RuntimeError("No canvas width fits the pyramid levels.")
    return best


@lru_cache(maxsize=512)
def _layout(
    height: int, width: int, min_face_size: int, scale_factor: float, skip_finest: int = 0
) -> tuple[_Canvas, ...]:
    levels = _pyramid(height, width, min_face_size, scale_factor, skip_finest)
    canvases = []
    small = []
    for level in levels:
        if level.height * level.width > _BIG_LEVEL:
            canvases.append(_pack([level]))
        else:
            small.append(level)
    if small:
        canvases.append(_pack(small))
    return tuple(canvases)


@lru_cache(maxsize=32)
def _canvas_mask(canvas: _Canvas) -> np.ndarray:
    """0 over each level's first-conv output, -1e9 elsewhere (added before the pooling)."""
    mask = np.full((1, canvas.height - 2, canvas.width - 2, 1), _MASK_OFF, np.float32)
    for level in canvas.levels:
        mask[0, level.top : level.top + level.height - 2, level.left : level.left + level.width - 2] = 0
    return mask


# --------------------------------------------------------------------------- box arithmetic


def _sort_desc(rows: np.ndarray, scores: np.ndarray) -> np.ndarray:
    # mtcnn's sort_by_scores: ascending argsort, reversed (its tie order included).
    return rows[np.argsort(scores)[::-1]]


def _nms(rows: np.ndarray, threshold: float, method: str = "union", initial_sort: bool = True) -> np.ndarray:
    """mtcnn's smart_nms_from_bboxes for one image: rows are [id, x1, y1, x2, y2, score, ...].

    Box j is dropped when some earlier box i (in score order, dropped or not) has
    overlap(i, j) > threshold. Only boxes that overlap in x can pass a positive threshold, so
    the pairs come from a sweep over x1 rather than the package's n x n matrix; each pair's
    overlap is computed with the package's formula.
    """
    if initial_sort:
        rows = _sort_desc(rows, rows[:, 5])
    n = len(rows)
    if n < 2:
        return rows
    x1, y1, x2, y2 = rows[:, 1], rows[:, 2], rows[:, 3], rows[:, 4]
    order = np.argsort(x1, kind="stable")
    ends = np.searchsorted(x1[order], x2[order], side="left")
    starts = np.arange(1, n + 1)
    counts = np.maximum(ends - starts, 0)
    total = int(counts.sum())
    if total == 0:
        return rows
    first = np.repeat(np.arange(n), counts)
    second = np.arange(total) - np.repeat(np.cumsum(counts) - counts - starts, counts)
    a, b = order[first], order[second]
    inter_w = np.minimum(x2[a], x2[b]) - np.maximum(x1[a], x1[b])
    inter_h = np.minimum(y2[a], y2[b]) - np.maximum(y1[a], y1[b])
    hit = (inter_w > 0) & (inter_h > 0)
    a, b, inter = a[hit], b[hit], inter_w[hit] * inter_h[hit]
    area = (x2 - x1) * (y2 - y1)
    if method == "union":
        overlap = inter / (area[a] + area[b] - inter)
    else:
        overlap = inter / np.minimum(area[a], area[b])
    suppressed = np.zeros(n, bool)
    suppressed[np.maximum(a, b)[overlap > threshold]] = True
    return rows[~suppressed]


def _to_square(rows: np.ndarray) -> np.ndarray:
    rows = rows.copy()
    h = rows[:, 4] - rows[:, 2]
    w = rows[:, 3] - rows[:, 1]
    side = np.maximum(w, h)
    rows[:, 1] = rows[:, 1] + w * 0.5 - side * 0.5
    rows[:, 2] = rows[:, 2] + h * 0.5 - side * 0.5
    rows[:, 3] = rows[:, 1] + side
    rows[:, 4] = rows[:, 2] + side
    return rows


def _calibrate(rows: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    rows = rows.copy()
    w = rows[:, 3] - rows[:, 1] + 1
    h = rows[:, 4] - rows[:, 2] + 1
    rows[:, 1:5] += offsets * np.stack([w, h, w, h], axis=-1)
    return rows


def _pnet_candidates(reg: np.ndarray, prob: np.ndarray, scale: float, threshold: float) -> np.ndarray:
    """mtcnn's generate_bounding_box + upscale_bboxes for one level: reg (h, w, 4), prob (h, w)."""
    ys, xs = np.nonzero(prob > threshold)
    if len(ys) == 0:
        return np.empty((0, 6))
    r = reg[ys, xs].astype(np.float64)
    # The cell spans [2x + 1, 2x + 12]: the regression is scaled by 11, not 12.
    x0, y0 = xs * 2, ys * 2
    rows = np.stack(
        [
            np.zeros(len(ys)),
            (x0 + 1) + r[:, 0] * 11,
            (y0 + 1) + r[:, 1] * 11,
            (x0 + 12) + r[:, 2] * 11,
            (y0 + 12) + r[:, 3] * 11,
            prob[ys, xs].astype(np.float64),
        ],
        axis=1,
    )
    rows = _sort_desc(rows, rows[:, 5])
    rows[:, 1:5] = rows[:, 1:5] / scale
    return rows


# --------------------------------------------------------------------------- the detector


class MTCNNDetector:
    """MTCNN face detection with the package's weights and results, several times faster.

    backend "tflite" (default): XNNPACK on ``num_threads`` threads (default min(2, cpus)); the
    converted flatbuffers are cached in ``cache_dir`` (keyed by the weights and TF version), or
    converted in memory when it is None. backend "tf": tf.function graphs (CPU or GPU; TF's
    own thread settings apply). Either way the pyramid is resized on ``num_threads`` threads.

    ``skip_finest_levels=k`` leaves out the k largest pyramid levels, those that look for the
    smallest faces (level i finds faces of about ``min_face_size / scale_factor ** i`` px and
    up). The first level alone is half of P-Net's work; every other level, and so every larger
    face, is found exactly as the package finds it (unlike a bigger ``min_face_size``, which
    moves the whole scale grid and with it the boxes and landmarks of every face).

    ``fast_pyramid=True`` shrinks each pyramid level from the previous one instead of from the
    photo: ~10% faster, but P-Net then sees other pixels, and boxes and landmarks move by a few
    px (more than the 2 px the package-equivalence tests allow), so it is off by default.

    One detector serialises its own calls; use one per thread for parallelism. It keeps one
    P-Net interpreter per canvas shape met (see _MAX_CACHED_PIXELS for the memory bound).
    """

    def __init__(
        self,
        *,
        min_face_size: int = 20,
        thresholds: tuple[float, float, float] = (0.6, 0.7, 0.8),
        scale_factor: float = 0.709,
        backend: str = "tflite",
        num_threads: int | None = None,
        cache_dir: Path | None = None,
        fast_pyramid: bool = False,
        skip_finest_levels: int = 0,
    ) -> None:
        if backend not in ("tflite", "tf"):
            raise ValueError(f"Unknown MTCNN backend {backend!r}; expected 'tflite' or 'tf'.")
        if min_face_size <= 0:
            raise ValueError("min_face_size must be positive.")
        if not 0 < scale_factor < 1:
            raise ValueError("scale_factor must be between 0 and 1.")
        if len(thresholds) != 3:
            raise ValueError("thresholds must be three numbers (P-Net, R-Net, O-Net).")
        if skip_finest_levels < 0:
            raise ValueError("skip_finest_levels must be 0 or more.")
        self.min_face_size = int(min_face_size)
        self.skip_finest_levels = int(skip_finest_levels)
        self.thresholds = tuple(float(t) for t in thresholds)
        self.scale_factor = float(scale_factor)
        self.backend = backend
        self.fast_pyramid = bool(fast_pyramid)
        self.num_threads = int(num_threads or min(2, os.cpu_count() or 1))
        self._tf = _import_tf()
        self._lock = threading.Lock()
        # Pyramid levels are resized on this many threads (the TF op is single-threaded).
        self._resizer = ThreadPoolExecutor(self.num_threads - 1) if self.num_threads > 1 else None
        if backend == "tflite":
            self._models = _tflite_models(Path(cache_dir) if cache_dir is not None else None)
            # canvas shape -> (P-Net interpreter, canvas buffer), least recently used first
            self._canvases: OrderedDict[tuple[int, int], tuple[_TFLiteNet, np.ndarray]] = OrderedDict()
            self._batch_nets = {net: _TFLiteNet(self._models[net], self.num_threads) for net in ("rnet", "onet")}
        else:
            self._functions = _build_functions(_load_weights())

    def __del__(self) -> None:
        resizer = getattr(self, "_resizer", None)
        if resizer is not None:
            resizer.shutdown(wait=False)

    # -- networks ------------------------------------------------------------------------

    def _canvas(self, shape: tuple[int, int]) -> tuple[_TFLiteNet | None, np.ndarray]:
        """The P-Net interpreter and pixel buffer for a canvas shape. What lies outside the
        levels is masked, so a buffer is reused without zeroing (it only ever holds pixels)."""
        if self.backend == "tf":
            return None, np.zeros((1, *shape, 3), np.float32)
        entry = self._canvases.get(shape)
        if entry is not None:
            self._canvases.move_to_end(shape)
            return entry
        entry = (_TFLiteNet(self._models["pnet"], self.num_threads), np.zeros((1, *shape, 3), np.float32))
        if shape[0] * shape[1] <= _MAX_CACHED_PIXELS:
            self._canvases[shape] = entry
            while len(self._canvases) > _MAX_CANVASES or sum(h * w for h, w in self._canvases) > _MAX_CACHED_PIXELS:
                self._canvases.popitem(last=False)
        return entry

    def _run_pnet(self, net: _TFLiteNet | None, pixels: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if net is None:
            reg, prob = self._functions["pnet"](pixels, mask)
            return reg.numpy()[0], prob.numpy()[0, :, :, 1]
        reg, prob = net(pixels, mask)
        return reg[0], prob[0, :, :, 1]

    def _run_batch(self, net: str, patches) -> list[np.ndarray]:
        """R-Net: [reg, prob]; O-Net: [landmarks, reg, prob]."""
        if self.backend == "tf":
            outs = [t.numpy() for t in self._functions[net](patches)]
            return sorted(outs, key=lambda a: -a.shape[-1])
        return self._batch_nets[net](patches.numpy())

    def _patches(self, image_t, rows: np.ndarray, size: int):
        # mtcnn's extract_patches: boxes normalised by the image size, cast to float32, cut by
        # the same op as tf.image.crop_and_resize (bilinear, zero outside), minus its wrapper.
        h, w = int(image_t.shape[1]), int(image_t.shape[2])
        boxes = (rows[:, [2, 1, 4, 3]] / np.array([[h, w, h, w]], np.float64)).astype(np.float32)
        indices = np.zeros(len(rows), np.int32)
        return self._tf.raw_ops.CropAndResize(
            image=image_t,
            boxes=boxes,
            box_ind=indices,
            crop_size=[size, size],
            method="bilinear",
            extrapolation_value=0.0,
        )

    def _fill_levels(self, pixels: np.ndarray, levels: tuple[_Level, ...], image_t) -> None:
        """Draw each level into the canvas: area-resized from the photo, by the op that
        tf.image.resize(method="area") calls (minus a wrapper that costs more than the op on
        small levels); or, with fast_pyramid, each from the one before by OpenCV."""
        tf = self._tf

        def draw(level: _Level, scaled: np.ndarray) -> None:
            pixels[0, level.top : level.top + level.height, level.left : level.left + level.width] = scaled

        if self.fast_pyramid:
            first = levels[0]
            previous = tf.raw_ops.ResizeArea(
                images=image_t, size=[first.height, first.width], align_corners=False
            ).numpy()[0]
            draw(first, previous)
            for level in levels[1:]:
                previous = cv2.resize(previous, (level.width, level.height), interpolation=cv2.INTER_AREA)
                draw(level, previous)
            return

        def job(part: tuple[_Level, ...]) -> None:
            for level in part:
                draw(
                    level,
                    tf.raw_ops.ResizeArea(
                        images=image_t, size=[level.height, level.width], align_corners=False
                    ).numpy()[0],
                )

        # Every level reads the whole photo, so each costs about the same: deal them out.
        if self._resizer is None or len(levels) < 2:
            job(levels)
            return
        workers = self.num_threads
        futures = [self._resizer.submit(job, levels[i::workers]) for i in range(1, workers)]
        job(levels[0::workers])
        for future in futures:
            future.result()

    # -- detection -----------------------------------------------------------------------

    def detect(self, image: np.ndarray) -> list[DetectedFace]:
        """Faces in an RGB (h, w, 3) array of 0..255 values (uint8), best score first; [] for
        photos under 12 px. Raises ValueError for arrays that are not (h, w, 3)."""
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"Expected an RGB image of shape (h, w, 3), got {image.shape}.")
        if min(image.shape[:2]) < _MIN_SIZE:
            return []
        if image.dtype != np.uint8:
            image = np.rint(np.clip(np.nan_to_num(image.astype(np.float64)), 0, 255)).astype(np.uint8)
        image = np.ascontiguousarray(image)
        with self._lock:
            rows = self._detect_rows(image)
        return [_face(row) for row in rows]

    def _detect_rows(self, image: np.ndarray) -> np.ndarray:
        height, width = image.shape[:2]
        t_pnet, t_rnet, t_onet = self.thresholds
        canvases = _layout(height, width, self.min_face_size, self.scale_factor, self.skip_finest_levels)
        if not canvases:
            return np.empty((0, 16))
        normalized = cv2.LUT(image, _NORM_LUT)
        image_t = self._tf.constant(normalized[None])

        # Stage 1: P-Net on every pyramid level, packed into as few canvases as possible.
        per_level = []
        for canvas in canvases:
            net, pixels = self._canvas((canvas.height, canvas.width))
            self._fill_levels(pixels, canvas.levels, image_t)
            reg, prob = self._run_pnet(net, pixels, _canvas_mask(canvas))
            for level in canvas.levels:
                oh, ow = level.out_shape
                y, x = level.top // 2, level.left // 2
                rows = _pnet_candidates(reg[y : y + oh, x : x + ow], prob[y : y + oh, x : x + ow], level.scale, t_pnet)
                if len(rows):
                    per_level.append(_nms(rows, 0.5, "union", initial_sort=False))
        if not per_level:
            return np.empty((0, 16))
        rows = _to_square(_nms(np.concatenate(per_level, axis=0), 0.7, "union"))

        # Stage 2: R-Net on 24x24 patches.
        reg, prob = self._run_batch("rnet", self._patches(image_t, rows, 24))
        rows[:, 5] = prob[:, 1]
        rows = _calibrate(rows, reg)
        rows = rows[rows[:, 5] > t_rnet]
        if not len(rows):
            return np.empty((0, 16))
        rows = _to_square(_nms(rows, 0.7, "union"))

        # Stage 3: O-Net on 48x48 patches; landmarks are relative to the patch box.
        landmarks, reg, prob = self._run_batch("onet", self._patches(image_t, rows, 48))
        w = rows[:, 3:4] - rows[:, 1:2] + 1
        h = rows[:, 4:5] - rows[:, 2:3] + 1
        points = np.empty_like(landmarks)  # float32, as the package keeps them
        points[:, 0:5] = w * landmarks[:, 0:5] + rows[:, 1:2] - 1
        points[:, 5:10] = h * landmarks[:, 5:10] + rows[:, 2:3] - 1
        rows[:, 5] = prob[:, 1]
        rows = np.concatenate([_calibrate(rows, reg), points], axis=-1)
        rows = rows[rows[:, 5] > t_onet]
        if not len(rows):
            return np.empty((0, 16))
        rows = _nms(rows, 0.7, "min")

        # fit_to_image: boxes clipped to the image, landmarks left alone.
        rows[:, [1, 3]] = np.clip(rows[:, [1, 3]], 0, width - 1)
        rows[:, [2, 4]] = np.clip(rows[:, [2, 4]], 0, height - 1)
        return rows


def _face(row: np.ndarray) -> DetectedFace:
    x1, y1, x2, y2 = (float(v) for v in row[1:5])
    landmarks = np.stack([row[6:11], row[11:16]], axis=1).astype(np.float32)
    return DetectedFace(box=(x1, y1, x2 - x1, y2 - y1), score=float(row[5]), landmarks=landmarks)
