"""manage.py train_arcface end to end on a RecordIO pack, with an insightface .bin benchmark."""

from __future__ import annotations

import io
import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from django.core.management import CommandError, call_command

from facetrain.data.recordio import write_recordio

pytest.importorskip("tensorflow")

SIZE = 32


def png(label: int, rng) -> bytes:
    image = rng.integers(0, 40, (SIZE, SIZE, 3)).astype(np.uint8)
    image[4 + 6 * label : 12 + 6 * label, 8:24, label % 3] = 240
    ok, data = cv2.imencode(".png", image)
    assert ok
    return data.tobytes()


@pytest.fixture
def workspace(tmp_path):
    rng = np.random.default_rng(0)
    data = tmp_path / "pack"
    data.mkdir()
    write_recordio(data / "train.rec", [(png(label, rng), label) for label in range(3) for _ in range(6)])
    # An insightface verification pack: pickled (images, issame), pair i = images 2i, 2i+1.
    bins, issame = [], []
    for i in range(20):
        a, b = i % 3, (i % 3 if i % 2 == 0 else (i + 1) % 3)
        bins += [png(a, rng), png(b, rng)]
        issame.append(a == b)
    (tmp_path / "toy.bin").write_bytes(pickle.dumps((bins, issame)))
    return tmp_path


def arguments(workspace, *extra):
    return [
        "--data",
        str(workspace / "pack"),
        "--out",
        str(workspace / "run"),
        "--backbone",
        "mobilefacenet",
        "--embedding-size",
        "16",
        "--input-size",
        str(SIZE),
        "--batch-size",
        "6",
        "--epochs",
        "1",
        "--lr",
        "0.01",
        "--margin-s",
        "16",
        "--eval",
        f"bin:{workspace / 'toy.bin'}",
        "--eval-every",
        "2",
        "--log-every",
        "1",
        *extra,
    ]


def run(workspace, *extra):
    out = io.StringIO()
    call_command("train_arcface", *arguments(workspace, *extra), stdout=out)
    return out.getvalue()


@pytest.mark.slow
def test_train_arcface_writes_the_run_folder_and_resumes(workspace):
    output = run(workspace, "--max-steps", "2")
    assert "Trained to step 2" in output and "toy" in output
    run_dir = workspace / "run"
    meta = json.loads((run_dir / "run.json").read_text())
    assert meta["backbone"] == "mobilefacenet" and meta["classes"] == 3 and meta["step"] == 2
    assert meta["head"]["s"] == 16.0 and meta["head"]["m2"] == 0.5
    record = json.loads((run_dir / "verification.jsonl").read_text().splitlines()[0])
    assert record["step"] == 2 and set(record["benchmarks"]["toy"]) >= {"accuracy", "std", "threshold"}
    assert (run_dir / "backbone.keras").is_file() and (run_dir / "checkpoints").is_dir()

    output = run(workspace, "--max-steps", "3")
    assert "Resumed from step 2" in output and "Trained to step 3" in output
    assert json.loads((run_dir / "run.json").read_text())["step"] == 3


def check_run_folder(run_dir, step):
    meta = json.loads((run_dir / "run.json").read_text())
    assert meta["backbone"] == "mobilefacenet" and meta["classes"] == 3 and meta["step"] == step
    record = json.loads((run_dir / "verification.jsonl").read_text().splitlines()[0])
    assert record["step"] == 2 and 0 <= record["benchmarks"]["toy"]["accuracy"] <= 1
    assert (run_dir / "backbone.keras").is_file()
    return meta


@pytest.mark.slow
def test_the_keras_trainer_runs_from_the_command_and_resumes(workspace):
    # Keras is loaded on TensorFlow in this process: the backend-neutral trainer on it.
    output = run(workspace, "--max-steps", "2", "--trainer", "keras", "--workers", "0")
    assert "Trained to step 2" in output and "keras trainer on tensorflow" in output and "toy" in output
    assert check_run_folder(workspace / "run", 2)["backend"] == "tensorflow"
    assert sorted(p.name for p in (workspace / "run" / "checkpoints").iterdir()) == ["step-00000002.keras"]
    output = run(workspace, "--max-steps", "3", "--trainer", "keras", "--workers", "0")
    assert "Resumed from step 2" in output and "Trained to step 3" in output


@pytest.mark.slow
def test_the_command_trains_on_jax_in_a_process_of_its_own(workspace):
    pytest.importorskip("jax")
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    root = Path(__file__).resolve().parents[2]
    command = [sys.executable, "manage.py", "train_arcface", *arguments(workspace, "--max-steps", "2")]
    done = subprocess.run(
        [*command, "--trainer", "keras", "--keras-backend", "jax", "--workers", "0"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Trained to step 2" in done.stdout and "keras trainer on jax" in done.stdout
    assert check_run_folder(workspace / "run", 2)["backend"] == "jax"


def test_a_keras_backend_other_than_the_loaded_one_is_refused(workspace):
    import keras

    other = "jax" if keras.backend.backend() == "tensorflow" else "tensorflow"
    with pytest.raises(CommandError, match="already loaded"):
        call_command("train_arcface", *arguments(workspace, "--trainer", "keras", "--keras-backend", other))
    with pytest.raises(CommandError, match="go with --trainer keras"):
        call_command("train_arcface", *arguments(workspace, "--keras-backend", "jax"))


def test_bad_eval_spec_is_a_command_error(workspace):
    with pytest.raises(CommandError, match="KIND:PATH"):
        call_command(
            "train_arcface",
            "--data",
            str(workspace / "pack"),
            "--out",
            str(workspace / "run"),
            "--eval",
            "imagenet:/nowhere",
        )


def test_missing_data_is_a_command_error(tmp_path):
    with pytest.raises(CommandError, match="does not exist"):
        call_command("train_arcface", "--data", str(tmp_path / "nothing"), "--out", str(tmp_path / "run"))
