"""Fixtures shared by the whole suite, in one place: an isolated media folder, cache and gallery
index per test (autouse), the fake engine, the real engine and the shared photos. Package
conftests hold only what is theirs (users and clients of the API and security suites)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# The worker stack's fixtures (Redis, Celery workers, the enrolled Obama), shared by the worker
# and fault suites.
pytest_plugins = ["tests.workers"]


def test_data_dir() -> Path:
    """The shared face photos; the same default as settings.FACESITE_TEST_DATA."""
    return Path(os.environ.get("FACESITE_TEST_DATA", ROOT.parent / "shared" / "faces"))


def require_file(relative: str) -> Path:
    """A file under the shared photos, or skip the test saying what is missing."""
    path = test_data_dir() / relative
    if not path.exists():
        pytest.skip(f"{path} not found: set FACESITE_TEST_DATA to the shared faces folder")
    return path


def model_dir() -> Path:
    return Path(os.environ.get("FACESITE_MODEL_DIR", ROOT / "var" / "models"))


@pytest.fixture
def media_root(settings, tmp_path) -> Path:
    """A media folder of the test's own: uploads never land in the real one."""
    root = tmp_path / "media"
    root.mkdir()
    settings.MEDIA_ROOT = root
    return root


@pytest.fixture(autouse=True)
def _isolated_state(media_root):
    """Every test: its own media folder, an empty cache (throttle counts, rate limits) and no
    cached gallery index (test databases roll back under it; production never rewinds)."""
    from django.core.cache import cache

    from members import selectors

    cache.clear()
    selectors.clear_gallery_cache()
    yield
    cache.clear()
    selectors.clear_gallery_cache()


@pytest.fixture
def fake_engine(monkeypatch):
    """The apps run the real Recognizer on the fake detector and embedder (tests/fakes.py)."""
    from tests.fakes import FAKE_DIM, make_fake_recognizer

    recognizers = {None: make_fake_recognizer()}

    def engine(model_name=None):
        if model_name not in recognizers:
            recognizers[model_name] = make_fake_recognizer(model_name, FAKE_DIM, seed=len(recognizers))
        return recognizers[model_name]

    monkeypatch.setattr("facesite.engine.recognizer", engine)
    return engine


@pytest.fixture(scope="session")
def lfw_dir() -> Path:
    path = test_data_dir() / "lfw" / "lfw-deepfunneled"
    if not path.is_dir():
        pytest.skip(f"LFW photos not found at {path}: set FACESITE_TEST_DATA to the shared faces folder")
    return path


@pytest.fixture(scope="session")
def real_recognizer():
    """The engine as the apps build it from the settings (MTCNN + the default model), once."""
    from django.conf import settings

    from faceengine.model_fetch import is_installed
    from facesite.engine import active_model_spec, get_recognizer

    spec = active_model_spec()
    if not is_installed(spec, settings.FACESITE_MODEL_DIR):
        pytest.skip(f"The default model is not in {settings.FACESITE_MODEL_DIR}: run `manage.py fetch_models`")
    require_yunet(settings.FACESITE_MODEL_DIR)
    return get_recognizer()


def require_yunet(folder: Path | None = None) -> None:
    """Skip, saying why, where the thorough pass's detector has not been fetched."""
    from faceengine.yunet import YUNET_FILE

    path = (folder or model_dir()) / YUNET_FILE.filename
    if not path.is_file():
        pytest.skip(f"YuNet is not at {path}: run `manage.py fetch_models`")


@pytest.fixture
def eager_celery():
    """Tasks run in the calling process, as in the embedded default (no broker)."""
    from facesite.celery import app

    saved = app.conf.task_always_eager, app.conf.task_eager_propagates
    app.conf.task_always_eager, app.conf.task_eager_propagates = True, True
    yield app
    app.conf.task_always_eager, app.conf.task_eager_propagates = saved


def use_broker(url: str):
    """Send tasks to ``url`` instead of running them eagerly; returns a function that undoes it."""
    from facesite.celery import app

    saved = {key: app.conf[key] for key in ("broker_url", "task_always_eager")}
    app.conf.update(broker_url=url, task_always_eager=False)
    app._pool = None
    app.amqp._producer_pool = None

    def restore() -> None:
        app.conf.update(saved)
        app._pool = None
        app.amqp._producer_pool = None

    return restore


def worker_database_url() -> str:
    """The test database as a URL for a worker subprocess; skips on SQLite, which a second
    process cannot see."""
    from urllib.parse import quote

    from django.db import connection

    if connection.vendor != "mysql":
        pytest.skip(
            "the worker tests need MySQL/MariaDB (DATABASE_URL=mysql://...): a worker process "
            "cannot see the test's SQLite database"
        )
    db = connection.settings_dict
    auth = quote(db["USER"] or "root")
    if db.get("PASSWORD"):
        auth += ":" + quote(db["PASSWORD"])
    return f"mysql://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 3306}/{db['NAME']}"


def lfw_subset(tmp_path: Path, per_class_per_fold: int = 3) -> Path:
    """A 10-fold LFW pairs file with the first few same/different pairs of each real fold."""
    lfw = require_file("lfw/pairs.txt").parent
    header, *body = (lfw / "pairs.txt").read_text().splitlines()
    folds, per_fold = (int(v) for v in header.split())
    picked = []
    for fold in range(folds):
        start = fold * 2 * per_fold
        picked += body[start : start + per_class_per_fold]
        picked += body[start + per_fold : start + per_fold + per_class_per_fold]
    subset = tmp_path / "lfw"
    subset.mkdir()
    (subset / "lfw-deepfunneled").symlink_to(lfw / "lfw-deepfunneled")
    (subset / "pairs.txt").write_text(f"{folds}\t{per_class_per_fold}\n" + "\n".join(picked) + "\n")
    return subset


@pytest.fixture(scope="session")
def faces_dir() -> Path:
    path = test_data_dir()
    if not path.is_dir():
        pytest.skip(f"{path} not found: set FACESITE_TEST_DATA to the shared faces folder")
    return path


@pytest.fixture(scope="session")
def default_spec():
    from faceengine.embedders.registry import DEFAULT_MODEL

    return DEFAULT_MODEL


@pytest.fixture(scope="session")
def default_embedder(default_spec):
    """The real default model; `make test` fetches it first."""
    from faceengine.embedders.registry import build_embedder
    from faceengine.model_fetch import is_installed

    if not is_installed(default_spec, model_dir()):
        pytest.skip(f"The default model is not in {model_dir()}: run `manage.py fetch_models`")
    return build_embedder(default_spec, model_dir())


@pytest.fixture(scope="session")
def recognizer(default_embedder):
    """The real pipeline without Django: fast MTCNN (YuNet in the thorough pass) + alignment +
    the default model."""
    import faceengine

    require_yunet()
    return faceengine.load(model_dir())
