"""The numpy batch loader: shapes, labels, flips, the reproducible stream, workers, RecordIO."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from facetrain.data.convention import MEAN, STD
from facetrain.data.folder import scan_identities
from facetrain.data.loader import BatchLoader, FolderSamples, RecordIOSamples, open_samples
from tests.facetrain.synthetic import make_identity_folder, read_rgb

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return make_identity_folder(tmp_path_factory.mktemp("ids"), classes=3, per_class=5, size=32)


def as_uint8(images: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(images * STD + MEAN), 0, 255).astype(np.uint8)


def test_batches_have_the_shapes_labels_and_flips_of_their_files(folder):
    source = open_samples(folder)
    assert isinstance(source, FolderSamples) and source.classes == 3 and len(source) == 15
    loader = BatchLoader(source, batch_size=4, input_size=32, seed=3, workers=0)
    for batch in range(6):  # past the first epoch (3 batches of 4 out of 15)
        images, labels = next(loader)
        assert images.shape == (4, 32, 32, 3) and images.dtype == np.float32
        assert labels.shape == (4,) and labels.dtype == np.int32
        indices, flips = loader.task(batch)
        for slot, (index, flip) in enumerate(zip(indices, flips, strict=True)):
            assert labels[slot] == source.labels[index]
            original = read_rgb(Path(source.files[index]))
            expected = original[:, ::-1] if flip else original
            np.testing.assert_array_equal(as_uint8(images[slot]), expected)
    flips = np.concatenate([loader.task(b)[1] for b in range(50)])
    assert 0.3 < flips.mean() < 0.7  # about half the faces are mirrored


def test_every_epoch_visits_each_sample_once_in_a_new_order(folder):
    loader = BatchLoader(open_samples(folder), batch_size=5, input_size=32, workers=0)
    first = np.concatenate([loader.task(b)[0] for b in range(3)])
    second = np.concatenate([loader.task(b)[0] for b in range(3, 6)])
    assert sorted(first) == sorted(second) == list(range(15))
    assert not np.array_equal(first, second)


def test_the_stream_resumes_where_it_stopped_and_workers_give_the_same_batches(folder):
    source = open_samples(folder)
    fresh = BatchLoader(source, batch_size=4, input_size=32, seed=1, workers=0)
    expected = [next(fresh) for _ in range(5)]
    with BatchLoader(source, batch_size=4, input_size=32, seed=1, workers=2, prefetch=3, start_batch=2) as resumed:
        for want in expected[2:]:
            images, labels = next(resumed)
            np.testing.assert_array_equal(images, want[0])
            np.testing.assert_array_equal(labels, want[1])


def test_resizes_crops_of_another_size(folder):
    images, _ = next(BatchLoader(open_samples(folder), batch_size=2, input_size=16, workers=0))
    assert images.shape == (2, 16, 16, 3)


def test_recordio_pack_feeds_the_loader(folder, tmp_path):
    from facetrain.data.recordio import write_recordio

    ids = scan_identities(folder)
    rec = tmp_path / "train.rec"
    write_recordio(rec, [(p.read_bytes(), label) for p, label in zip(ids.files, ids.labels, strict=True)])
    source = open_samples(tmp_path)
    assert isinstance(source, RecordIOSamples) and len(source) == 15 and source.classes == 3
    with BatchLoader(source, batch_size=5, input_size=32, workers=1, shuffle=False, flip=False) as loader:
        images, labels = next(loader)
    np.testing.assert_array_equal(labels, ids.labels[:5])
    np.testing.assert_array_equal(as_uint8(images[0]), read_rgb(ids.files[0]))


def test_refuses_tfrecords_and_too_small_sources(folder, tmp_path):
    (tmp_path / "a.tfrecord").write_bytes(b"")
    with pytest.raises(ValueError, match="TFRecord"):
        open_samples(tmp_path)
    with pytest.raises(ValueError, match="batch size"):
        BatchLoader(open_samples(folder), batch_size=16, input_size=32)


def test_the_numpy_path_imports_no_tensorflow():
    code = (
        "import sys; sys.modules['tensorflow'] = None\n"
        "import facetrain, facetrain.data.loader, facetrain.data.recordio, facetrain.data.folder\n"
        "import facetrain.config, facetrain.margin, facetrain.verification\n"
        "print('ok')"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
