"""Tests for the benchmark pair readers (tiny fake trees written into tmp_path; no database)."""

from __future__ import annotations

import io
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from faceengine.evaluation.datasets import (
    ImageRef,
    PairSet,
    load_benchmark,
    read_bin,
    read_cfp,
    read_lfw,
)

DEFAULT_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "faces"


def write_jpeg(path: Path, shade: int = 128, size: int = 250) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (size, size), (shade, 255 - shade, 60)).save(path, "JPEG")


def jpeg_bytes(shade: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (16, 16), (shade, 0, 0)).save(buf, "JPEG")
    return buf.getvalue()


# --------------------------------------------------------------------------- LFW

PEOPLE = {"Alice_A": 3, "Bob_B": 2, "Carol_C": 2, "Dan_D": 1}


def make_lfw(root: Path, folder: str = "lfw-deepfunneled") -> Path:
    for shade, (name, count) in enumerate(PEOPLE.items()):
        for i in range(1, count + 1):
            write_jpeg(root / folder / name / f"{name}_{i:04d}.jpg", shade * 40 + i)
    return root


VIEW2 = """2\t2
Alice_A\t1\t2
Bob_B\t1\t2
Alice_A\t1\tDan_D\t1
Carol_C\t1\tBob_B\t2
Alice_A\t2\t3
Carol_C\t1\t2
Dan_D\t1\tBob_B\t1
Alice_A\t3\tCarol_C\t2
"""


def test_read_lfw_view2_header(tmp_path):
    root = make_lfw(tmp_path)
    (root / "pairs.txt").write_text(VIEW2)
    ps = read_lfw(root)
    assert isinstance(ps, PairSet) and ps.name == "lfw"
    assert len(ps) == 8
    np.testing.assert_array_equal(ps.same, [1, 1, 0, 0, 1, 1, 0, 0])
    np.testing.assert_array_equal(ps.folds, [0, 0, 0, 0, 1, 1, 1, 1])
    keys = [[ps.images[i].key for i in pair] for pair in ps.pairs]
    assert keys[0] == ["Alice_A/Alice_A_0001.jpg", "Alice_A/Alice_A_0002.jpg"]
    assert keys[3] == ["Carol_C/Carol_C_0001.jpg", "Bob_B/Bob_B_0002.jpg"]
    assert keys[7] == ["Alice_A/Alice_A_0003.jpg", "Carol_C/Carol_C_0002.jpg"]
    # Every referenced image appears once: 3 + 2 + 2 + 1 = 8 distinct files.
    assert len(ps.images) == 8
    assert len({img.path for img in ps.images}) == 8
    assert ps.pairs[0, 0] == ps.pairs[2, 0]  # Alice_A_0001 shared by two pairs, one index
    for img in ps.images:
        assert img.path.is_file() and img.read_bytes()[:2] == b"\xff\xd8"


def test_read_lfw_view1_without_header_round_robin(tmp_path):
    root = make_lfw(tmp_path, "lfw")  # another auto-detected folder name
    same_lines = ["Alice_A 1 2", "Alice_A 1 3", "Alice_A 2 3", "Bob_B 1 2", "Carol_C 1 2"] * 3
    diff_lines = ["Alice_A 1 Bob_B 1", "Bob_B 2 Carol_C 1", "Carol_C 2 Dan_D 1", "Dan_D 1 Alice_A 3"] * 3
    (root / "pairsDevTest.txt").write_text("\n".join(same_lines + diff_lines) + "\n")
    ps = read_lfw(root, "pairsDevTest.txt")
    assert len(ps) == 27 and ps.same.sum() == 15
    assert ps.same[:15].all() and not ps.same[15:].any()
    np.testing.assert_array_equal(ps.folds[:15], np.arange(15) % 10)
    np.testing.assert_array_equal(ps.folds[15:], np.arange(12) % 10)
    assert len(ps.images) == 8
    assert ps.images[0].path.parent.parent.name == "lfw"


def test_read_lfw_prefers_nested_kaggle_folder(tmp_path):
    root = make_lfw(tmp_path, "lfw-deepfunneled/lfw-deepfunneled")
    (root / "pairs.txt").write_text(VIEW2)
    ps = read_lfw(root)
    assert ps.images[0].path.parent.parent == root / "lfw-deepfunneled" / "lfw-deepfunneled"


def test_read_lfw_missing_image_names_file(tmp_path):
    root = make_lfw(tmp_path)
    (root / "pairs.txt").write_text(VIEW2.replace("Carol_C\t1\t2", "Carol_C\t1\t7"))
    with pytest.raises(FileNotFoundError, match=r"Carol_C_0007\.jpg"):
        read_lfw(root)


def test_read_lfw_bad_line_names_line_number(tmp_path):
    root = make_lfw(tmp_path)
    (root / "pairs.txt").write_text(VIEW2.replace("Bob_B\t1\t2", "Bob_B\t1"))
    with pytest.raises(ValueError, match="line 3"):
        read_lfw(root)
    (root / "pairs.txt").write_text(VIEW2.replace("Bob_B\t1\t2", "Bob_B\tx\t2"))
    with pytest.raises(ValueError, match="line 3"):
        read_lfw(root)


def test_read_lfw_header_count_mismatch(tmp_path):
    root = make_lfw(tmp_path)
    (root / "pairs.txt").write_text(VIEW2.replace("2\t2", "3\t2", 1))
    with pytest.raises(ValueError, match="header"):
        read_lfw(root)


def test_read_lfw_no_image_folder(tmp_path):
    (tmp_path / "pairs.txt").write_text(VIEW2)
    with pytest.raises(FileNotFoundError, match="LFW image folder"):
        read_lfw(tmp_path)


# --------------------------------------------------------------------------- CFP


def make_cfp(root: Path, suffix: str = ".csv") -> Path:
    proto = root / "Protocol"
    f_lines, p_lines = [], []
    for person in (1, 2):
        for k in (1, 2):
            idx = (person - 1) * 2 + k
            rel_f = f"Data/Images/{person:03d}/frontal/{k:02d}.jpg"
            rel_p = f"Data/Images/{person:03d}/profile/{k:02d}.jpg"
            write_jpeg(root / rel_f, idx * 10)
            write_jpeg(root / rel_p, idx * 20)
            f_lines.append(f"{idx} ../{rel_f}")
            p_lines.append(f"{idx} ../{rel_p}")
    proto.mkdir(parents=True, exist_ok=True)
    (proto / "Pair_list_F.txt").write_text("\n".join(f_lines) + "\n")
    (proto / "Pair_list_P.txt").write_text("\n".join(p_lines) + "\n")
    for prot in ("FF", "FP"):
        for split, (same, diff) in enumerate([("1,2", "1,3"), ("3,4\n1,2", "2,4")], start=1):
            d = proto / "Split" / prot / f"{split:02d}"
            d.mkdir(parents=True)
            (d / f"same{suffix}").write_text(same + "\n")
            (d / f"diff{suffix}").write_text(diff + "\n")
    return root


def test_read_cfp_ff(tmp_path):
    root = make_cfp(tmp_path)
    ps = read_cfp(root, "FF")
    assert ps.name == "cfp_ff" and len(ps) == 5
    np.testing.assert_array_equal(ps.same, [1, 0, 1, 1, 0])
    np.testing.assert_array_equal(ps.folds, [0, 0, 1, 1, 1])
    keys = [[ps.images[i].key for i in pair] for pair in ps.pairs]
    assert keys[0] == ["Data/Images/001/frontal/01.jpg", "Data/Images/001/frontal/02.jpg"]
    assert keys[1] == ["Data/Images/001/frontal/01.jpg", "Data/Images/002/frontal/01.jpg"]
    assert keys[2] == ["Data/Images/002/frontal/01.jpg", "Data/Images/002/frontal/02.jpg"]
    assert len(ps.images) == 4  # 4 distinct frontal images, "1,2" twice -> same indices
    np.testing.assert_array_equal(ps.pairs[0], ps.pairs[3])
    assert all(".." not in img.key and img.path.is_file() for img in ps.images)


def test_read_cfp_with_the_authors_txt_split_files(tmp_path):
    """CFP as its authors distribute it: Protocol/Split/{FF,FP}/NN/same.txt and diff.txt."""
    root = make_cfp(tmp_path, suffix=".txt")
    assert not list(root.rglob("*.csv"))
    for protocol in ("FF", "FP"):
        ps = read_cfp(root, protocol)
        assert len(ps) == 5
        np.testing.assert_array_equal(ps.same, [1, 0, 1, 1, 0])
    (root / "Protocol/Split/FF/01/same.txt").unlink()
    with pytest.raises(FileNotFoundError, match=r"same\.txt"):
        read_cfp(root, "FF")


def test_read_cfp_fp_second_index_is_profile(tmp_path):
    root = make_cfp(tmp_path)
    ps = load_benchmark("cfp-fp", root)[0]
    assert ps.name == "cfp_fp" and len(ps) == 5
    keys = [[ps.images[i].key for i in pair] for pair in ps.pairs]
    assert keys[0] == ["Data/Images/001/frontal/01.jpg", "Data/Images/001/profile/02.jpg"]
    assert keys[4] == ["Data/Images/001/frontal/02.jpg", "Data/Images/002/profile/02.jpg"]
    assert len(ps.images) == 6  # F1, F2, F3 and P2, P3, P4: repeats share one index
    assert len({img.path for img in ps.images}) == len(ps.images)


def test_read_cfp_errors(tmp_path):
    root = make_cfp(tmp_path)
    (root / "Protocol/Split/FF/02/diff.csv").write_text("2,4\n2;9\n")
    with pytest.raises(ValueError, match="line 2"):
        read_cfp(root, "FF")
    (root / "Protocol/Split/FF/02/diff.csv").write_text("2,9\n")
    with pytest.raises(ValueError, match="index 9"):
        read_cfp(root, "FF")
    (root / "Protocol/Split/FF/02/diff.csv").write_text("2,4\n")
    os.remove(root / "Data/Images/002/frontal/02.jpg")
    with pytest.raises(FileNotFoundError, match=r"002/frontal/02\.jpg"):
        read_cfp(root, "FF")
    with pytest.raises(ValueError, match="FF"):
        read_cfp(root, "PP")


# --------------------------------------------------------------------------- .bin


def write_bin(path: Path, n_pairs: int, as_array: bool = False) -> tuple[list[bytes], list[bool]]:
    bins = [jpeg_bytes(i) for i in range(2 * n_pairs)]
    issame = [i % 3 != 0 for i in range(n_pairs)]
    stored = [np.frombuffer(b, dtype=np.uint8) for b in bins] if as_array else bins
    with path.open("wb") as f:
        pickle.dump((stored, issame), f, protocol=2)
    return bins, issame


def test_read_bin(tmp_path):
    bins, issame = write_bin(tmp_path / "agedb_30.bin", 20)
    ps = read_bin(tmp_path / "agedb_30.bin")
    assert ps.name == "agedb_30" and len(ps) == 20 and len(ps.images) == 40
    np.testing.assert_array_equal(ps.pairs[3], [6, 7])
    np.testing.assert_array_equal(ps.same, issame)
    np.testing.assert_array_equal(ps.folds, np.repeat(np.arange(10), 2))
    assert ps.images[7].read_bytes() == bins[7]
    assert ps.images[7].path is None and ps.images[7].key == "agedb_30/00007"


def test_read_bin_numpy_blobs_and_bad_counts(tmp_path):
    bins, _ = write_bin(tmp_path / "cfp_fp.bin", 10, as_array=True)
    assert read_bin(tmp_path / "cfp_fp.bin").images[5].read_bytes() == bins[5]
    with (tmp_path / "broken.bin").open("wb") as f:
        pickle.dump((bins[:5], [True, False, True]), f)
    with pytest.raises(ValueError, match="5 images for 3 pairs"):
        read_bin(tmp_path / "broken.bin")


def test_load_benchmark_dispatch(tmp_path):
    write_bin(tmp_path / "lfw.bin", 10)
    write_bin(tmp_path / "agedb_30.bin", 10)
    assert [ps.name for ps in load_benchmark("bin", tmp_path)] == ["agedb_30", "lfw"]
    assert [ps.name for ps in load_benchmark("bin", tmp_path / "lfw.bin")] == ["lfw"]
    with pytest.raises(FileNotFoundError):
        load_benchmark("bin", tmp_path / "empty_missing")
    with pytest.raises(ValueError, match="unknown benchmark kind"):
        load_benchmark("megaface", tmp_path)
    lfw_root = make_lfw(tmp_path / "lfwdir")
    (lfw_root / "pairs.txt").write_text(VIEW2)
    assert load_benchmark("lfw", lfw_root)[0].name == "lfw"
    cfp_root = make_cfp(tmp_path / "cfp")
    assert load_benchmark("cfp-ff", cfp_root)[0].name == "cfp_ff"


def test_image_ref_needs_exactly_one_source(tmp_path):
    with pytest.raises(ValueError):
        ImageRef(key="x")
    with pytest.raises(ValueError):
        ImageRef(key="x", path=tmp_path, data=b"1")
    assert ImageRef(key="x", data=b"abc").read_bytes() == b"abc"


# --------------------------------------------------------------------------- real LFW lists


@pytest.fixture(scope="module")
def real_lfw() -> Path:
    data = Path(os.environ.get("FACESITE_TEST_DATA", DEFAULT_DATA)) / "lfw"
    if not (data / "pairs.txt").is_file():
        pytest.skip(f"LFW not found at {data}: set FACESITE_TEST_DATA")
    return data


def test_real_lfw_view2(real_lfw):
    ps = read_lfw(real_lfw)
    assert len(ps) == 6000 and ps.same.sum() == 3000
    np.testing.assert_array_equal(np.bincount(ps.folds), [600] * 10)
    for k in range(10):  # each fold: 300 same then 300 different
        fold_same = ps.same[ps.folds == k]
        assert fold_same[:300].all() and not fold_same[300:].any()
    assert all(img.path.is_file() for img in ps.images)
    assert len({img.path for img in ps.images}) == len(ps.images)


def test_real_lfw_view1_dev_test(real_lfw):
    ps = read_lfw(real_lfw, "pairsDevTest.txt")
    assert len(ps) == 1000 and ps.same.sum() == 500
    np.testing.assert_array_equal(np.bincount(ps.folds[ps.same]), [50] * 10)
    np.testing.assert_array_equal(np.bincount(ps.folds[~ps.same]), [50] * 10)
