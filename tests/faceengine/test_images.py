"""Bad input gets a clear error, never a crash: the photo decoder."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from faceengine.errors import ImageError, ImageTooLarge, UnsupportedImageType
from faceengine.images import ImageLimits, load_image


def _jpeg(width: int = 64, height: int = 48, **save_kwargs) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 100, 50)).save(buffer, "JPEG", **save_kwargs)
    return buffer.getvalue()


def test_decodes_jpeg_to_rgb_array():
    array = load_image(_jpeg(64, 48))
    assert array.shape == (48, 64, 3) and array.dtype == np.uint8
    assert abs(int(array[10, 10, 0]) - 200) < 8


def test_non_image_is_unsupported_type():
    with pytest.raises(UnsupportedImageType, match="not an image"):
        load_image(b"%PDF-1.4 this is not a photo at all")


def test_empty_file_is_rejected():
    with pytest.raises(ImageError, match="empty"):
        load_image(b"")


def test_truncated_jpeg_is_a_clear_error():
    data = _jpeg(400, 300, quality=95)
    with pytest.raises(ImageError, match="damaged or truncated"):
        load_image(data[: len(data) // 2])


def test_decompression_bomb_refused_from_header():
    # A 20000x20000 PNG of one colour compresses to a few hundred KB; it must be refused
    # before the 1.2 GB of pixels are decoded.
    buffer = io.BytesIO()
    Image.new("1", (20000, 20000)).save(buffer, "PNG")
    with pytest.raises(ImageTooLarge, match="pixels"):
        load_image(buffer.getvalue(), ImageLimits(max_pixels=50_000_000))


def test_file_over_byte_limit_refused(tmp_path):
    path = tmp_path / "big.jpg"
    path.write_bytes(_jpeg(300, 300))
    with pytest.raises(ImageTooLarge):
        load_image(path, ImageLimits(max_bytes=100))


def test_missing_file(tmp_path):
    with pytest.raises(ImageError, match="No such file"):
        load_image(tmp_path / "nope.jpg")


def test_exif_orientation_is_honoured():
    # A 60x30 landscape photo tagged "rotate 90" must come back as 30 wide, 60 tall.
    image = Image.new("RGB", (60, 30), (0, 0, 0))
    exif = image.getexif()
    exif[0x0112] = 6  # Orientation: rotate 90 CW to display
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", exif=exif)
    assert load_image(buffer.getvalue()).shape == (60, 30, 3)


def test_rgba_and_grayscale_become_rgb():
    for mode in ("RGBA", "L", "P"):
        buffer = io.BytesIO()
        Image.new(mode, (20, 10)).save(buffer, "PNG")
        assert load_image(buffer.getvalue()).shape == (10, 20, 3)


def test_array_input_checked():
    with pytest.raises(ImageError, match="uint8"):
        load_image(np.zeros((10, 10, 3), np.float32))
    assert load_image(np.zeros((10, 10), np.uint8)).shape == (10, 10, 3)
