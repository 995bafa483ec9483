"""Decoding photos safely: content sniffing, size and pixel limits, EXIF orientation.

Decompression bombs are refused from the header alone, before any pixel is decoded.
"""

from __future__ import annotations

import io
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import ImageError, ImageTooLarge, UnsupportedImageType

DEFAULT_MAX_BYTES = 20 * 1024 * 1024
DEFAULT_MAX_PIXELS = 50_000_000
SUPPORTED_FORMATS = frozenset({"JPEG", "PNG", "WEBP", "BMP", "GIF", "TIFF", "MPO"})

ImageSource = str | os.PathLike | bytes | IO[bytes] | np.ndarray


@dataclass(frozen=True)
class ImageLimits:
    max_bytes: int = DEFAULT_MAX_BYTES
    max_pixels: int = DEFAULT_MAX_PIXELS


def _read_bytes(source: str | os.PathLike | bytes | IO[bytes], limits: ImageLimits) -> bytes:
    if isinstance(source, (bytes, bytearray)):
        data = bytes(source)
    elif isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.is_file():
            raise ImageError(f"No such file: {path}")
        if path.stat().st_size > limits.max_bytes:
            raise ImageTooLarge(f"The file is {path.stat().st_size} bytes; the limit is {limits.max_bytes}.")
        data = path.read_bytes()
    else:
        data = source.read(limits.max_bytes + 1)
    if len(data) > limits.max_bytes:
        raise ImageTooLarge(f"The file is over the limit of {limits.max_bytes} bytes.")
    if not data:
        raise ImageError("The file is empty.")
    return data


def load_image(source: ImageSource, limits: ImageLimits | None = None) -> np.ndarray:
    """Return the photo as an RGB uint8 array of shape (h, w, 3), upright per its EXIF.

    Raises ImageError (or a subclass) with a sentence a person can act on.
    """
    limits = limits or ImageLimits()
    if isinstance(source, np.ndarray):
        return _check_array(source, limits)
    data = _read_bytes(source, limits)
    try:
        with warnings.catch_warnings():
            # Pillow's own bomb check warns first and raises at twice its limit; ours is stricter.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image: Image.Image = Image.open(io.BytesIO(data))
            fmt = image.format
            width, height = image.size
    except UnidentifiedImageError as exc:
        raise UnsupportedImageType("The file is not an image in a supported format.") from exc
    except Image.DecompressionBombError as exc:
        # Pillow's message quotes its own limit; ours is the one that counts.
        raise ImageTooLarge(f"The image has far more pixels than the limit of {limits.max_pixels}.") from exc
    except (OSError, ValueError, SyntaxError) as exc:
        raise ImageError(f"The image cannot be read: {exc}") from exc
    if fmt not in SUPPORTED_FORMATS:
        raise UnsupportedImageType(f"Images of type {fmt} are not supported.")
    if width * height > limits.max_pixels:
        raise ImageTooLarge(
            f"The image is {width}x{height} = {width * height} pixels; the limit is {limits.max_pixels}."
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image.load()
            image = ImageOps.exif_transpose(image)
            rgb = _to_8_bit(image).convert("RGB")
    except Image.DecompressionBombError as exc:
        raise ImageTooLarge(f"The image has far more pixels than the limit of {limits.max_pixels}.") from exc
    except (OSError, ValueError, SyntaxError) as exc:
        # Truncated JPEGs land here: Pillow refuses to return half an image by default.
        raise ImageError(f"The image is damaged or truncated: {exc}") from exc
    return np.asarray(rgb, dtype=np.uint8)


# Pillow's modes of more than 8 bits a sample. ``convert("RGB")`` clips them at 255 instead of
# scaling, so a 16-bit photo comes out nearly white and no face is found in it.
_WIDE_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N", "I", "F"})


def _to_8_bit(image: Image.Image) -> Image.Image:
    """A greyscale image of 16-bit, 32-bit integer or float samples, scaled to 8 bits ("L").

    16-bit samples are scaled by their full range (65535 -> 255). 32-bit integers (how Pillow
    opens some 16-bit files) are scaled the same way when they fit in 16 bits, else by their
    maximum; floats in [0, 1] by 255, other floats by their range. Every other mode is left to
    ``convert``, which handles it correctly.
    """
    if image.mode not in _WIDE_MODES:
        return image
    samples = np.asarray(image)
    if image.mode == "F":
        samples = np.nan_to_num(samples.astype(np.float64))
        low, high = float(samples.min(initial=0.0)), float(samples.max(initial=0.0))
        if low >= 0.0 and high <= 1.0:
            scaled = samples * 255.0
        else:
            scaled = (samples - low) * (255.0 / ((high - low) or 1.0))
    else:
        samples = samples.astype(np.int64)
        high = int(samples.max(initial=0))
        if image.mode.startswith("I;16") or high <= 65535:
            scaled = np.clip(samples, 0, 65535) / 257.0
        else:
            scaled = np.clip(samples, 0, None) * (255.0 / high)
    return Image.fromarray(np.clip(np.rint(scaled), 0, 255).astype(np.uint8))


def _check_array(array: np.ndarray, limits: ImageLimits) -> np.ndarray:
    if array.ndim == 2:
        array = np.stack([array] * 3, axis=-1)
    if array.ndim != 3 or array.shape[2] not in (3, 4):
        raise ImageError(f"Expected an (h, w, 3) RGB array, got shape {array.shape}.")
    if array.shape[0] * array.shape[1] > limits.max_pixels:
        raise ImageTooLarge("The image has too many pixels.")
    if array.dtype != np.uint8:
        raise ImageError(f"Expected uint8 pixels, got {array.dtype}.")
    return np.ascontiguousarray(array[:, :, :3])
