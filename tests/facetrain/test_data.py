"""TFRecord round trip and the tf.data pipeline over every source kind."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from facetrain.data.folder import align_identities, scan_identities  # noqa: E402
from facetrain.data.pipeline import batches, open_training_data  # noqa: E402
from facetrain.data.recordio import write_recordio  # noqa: E402
from facetrain.data.tfrecord import tfrecord_dataset, write_tfrecord  # noqa: E402


def png(value: int, size: int = 20) -> bytes:
    image = np.zeros((size, size, 3), np.uint8)
    image[..., 0] = value
    image[:, : size // 2, 1] = 200  # left half green: shows whether a flip happened
    ok, data = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    assert ok
    return data.tobytes()


SAMPLES = [(png(10 * i), i % 3) for i in range(9)]


def test_tfrecord_round_trip(tmp_path):
    path = tmp_path / "train.tfrecord"
    meta = write_tfrecord(path, SAMPLES)
    assert meta == {"examples": 9, "classes": 3}
    read = [(image.numpy(), int(label)) for image, label in tfrecord_dataset([path])]
    assert read == SAMPLES
    data = open_training_data(tmp_path)
    assert (data.kind, data.examples, data.classes) == ("tfrecord", 9, 3)


def decoded_red_values(data, **kwargs):
    dataset = batches(data, batch_size=3, input_size=8, repeat=False, **kwargs)
    reds, labels = [], []
    for images, batch_labels in dataset:
        assert images.shape == (3, 8, 8, 3) and images.dtype == tf.float32
        reds.extend(np.round(images.numpy()[:, 4, 4, 0] * 128 + 127.5).astype(int).tolist())
        labels.extend(batch_labels.numpy().tolist())
    return reds, labels


@pytest.mark.parametrize("kind", ["recordio", "tfrecord", "folder"])
def test_pipeline_yields_normalised_batches_of_every_sample(tmp_path, kind):
    if kind == "recordio":
        write_recordio(tmp_path / "train.rec", SAMPLES)
    elif kind == "tfrecord":
        write_tfrecord(tmp_path / "a.tfrecord", SAMPLES)
    else:
        for i, (image, label) in enumerate(SAMPLES):
            (tmp_path / f"person{label}").mkdir(exist_ok=True)
            (tmp_path / f"person{label}" / f"{i}.png").write_bytes(image)
    data = open_training_data(tmp_path)
    assert data.kind == kind and data.examples == 9 and data.classes == 3
    reds, labels = decoded_red_values(data, shuffle=True, seed=3, flip=False)
    # Each image's red value encodes its index; the label must travel with it.
    assert sorted(reds) == [10 * i for i in range(9)]
    assert all(label == (red // 10) % 3 for red, label in zip(reds, labels, strict=True))
    unshuffled, _ = decoded_red_values(data, shuffle=False, flip=False)
    assert sorted(unshuffled) == sorted(reds)


def test_flip_augmentation_mirrors_some_images(tmp_path):
    write_recordio(tmp_path / "train.rec", [(png(100), 0)] * 30)
    data = open_training_data(tmp_path)
    dataset = batches(data, batch_size=30, input_size=20, repeat=False, flip=True, shuffle=False)
    images = next(iter(dataset))[0].numpy()
    left_green = images[:, 10, 2, 1] > 0  # green on the left: not flipped
    assert 0 < left_green.sum() < 30


def test_folder_alignment_uses_and_fills_the_cache(tmp_path):
    root = tmp_path / "people"
    for person in ("ann", "bob"):
        (root / person).mkdir(parents=True)
        for i in range(2):
            (root / person / f"{person}_{i}.png").write_bytes(png(50 * i + (person == "bob")))
    (root / "bob" / "noface.png").write_bytes(png(7))
    calls = []

    def fake_aligner(data: bytes):  # plumbing only: the real engine aligner is tested elsewhere
        calls.append(data)
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        return None if image[0, 0, 2] == 7 else np.ascontiguousarray(image[:, :, ::-1][:12, :12])

    folder = scan_identities(root)
    assert folder.names == ["ann", "bob"] and len(folder) == 5
    aligned = align_identities(folder, root, tmp_path / "cache", fake_aligner)
    assert len(aligned) == 4 and len(calls) == 5
    assert all(p.suffix == ".png" and p.is_file() for p in aligned.files)
    again = align_identities(folder, root, tmp_path / "cache", fake_aligner)
    assert len(calls) == 5  # nothing re-aligned, not even the photo without a face
    assert again.files == aligned.files and again.labels == [0, 0, 1, 1]
