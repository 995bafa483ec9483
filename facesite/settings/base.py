"""Settings shared by every environment. Values that differ come from the environment."""

from __future__ import annotations

from pathlib import Path

import dj_database_url

from facesite.log import logging_config

from .env import env_bool, env_float, env_int, env_str

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = Path(env_str("FACESITE_VAR_DIR", str(BASE_DIR / "var")))

DEBUG = False
ALLOWED_HOSTS: list[str] = []

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "recognition",
    "members",
    # accounts: hashed API tokens; drf_spectacular: the OpenAPI schema
    "accounts",
    "drf_spectacular",
]

MIDDLEWARE = [
    # First: every response, a redirect or a static file included, carries X-Request-ID, and
    # every log line during the request its id (facesite.request_id, facesite.log).
    "facesite.request_id.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Static files from STATIC_ROOT, right after SecurityMiddleware as whitenoise asks.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Database down / disk full -> 503 / 507 instead of a 500 (outside the session middleware).
    "facesite.db_unavailable.DatabaseUnavailableMiddleware",
    # Pages refuse an oversized body from its Content-Length, before the CSRF check reads it.
    "facesite.request_size.PageRequestSizeMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "facesite.urls"
WSGI_APPLICATION = "facesite.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
# DATABASE_URL selects the backend: sqlite:///path for the embedded default, or
# mysql://user:password@host:3306/name for production (mysqlclient).
DATABASES = {
    "default": dj_database_url.parse(
        # An empty value counts as unset (prod.py then says it is required).
        env_str("DATABASE_URL", "") or f"sqlite:///{VAR_DIR / 'facesite.sqlite3'}",
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 0),
        # A persistent connection is tested before reuse: after a database restart the first
        # request gets a fresh connection instead of an error (facesite.db_unavailable).
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.mysql":
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"charset": "utf8mb4", "init_command": "SET sql_mode='STRICT_TRANS_TABLES'"}
    )
    DATABASES["default"]["TEST"] = {"CHARSET": "utf8mb4", "COLLATION": "utf8mb4_unicode_ci"}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"
# Uploads: a full disk leaves no partial file and raises StorageFull (facesite.disk_full).
STORAGES = {
    "default": {"BACKEND": "facesite.disk_full.DiskFullSafeStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
MEDIA_URL = "media/"
MEDIA_ROOT = Path(env_str("FACESITE_MEDIA_ROOT", str(VAR_DIR / "media")))

# --- Uploads: limits checked before any decoding ------------------------------------------
FACESITE_MAX_UPLOAD_BYTES = env_int("FACESITE_MAX_UPLOAD_BYTES", 20 * 1024 * 1024)
FACESITE_MAX_IMAGE_PIXELS = env_int("FACESITE_MAX_IMAGE_PIXELS", 50_000_000)
DATA_UPLOAD_MAX_MEMORY_SIZE = FACESITE_MAX_UPLOAD_BYTES + 1024 * 1024
# A whole page or admin request (the plain upload form sends all its photos at once) is refused
# from its Content-Length before it is read (facesite.request_size).
FACESITE_PAGE_MAX_REQUEST_BYTES = env_int("FACESITE_PAGE_MAX_REQUEST_BYTES", 5 * FACESITE_MAX_UPLOAD_BYTES)

# --- Celery ---------------------------------------------------------------------------------
# Without a broker URL the tasks run eagerly in the web process: the embedded default.
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "")
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", not CELERY_BROKER_URL)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 300)
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 240)
CELERY_TASK_DEFAULT_QUEUE = "default"
# Everything that runs the engine goes to its own queue, served by workers that load the model.
CELERY_TASK_ROUTES = {
    "recognition.tasks.*": {"queue": "recognition"},
    # The members tasks are named "members.<name>": enrolment uploads reach the engine workers too.
    "members.*": {"queue": "recognition"},
}
# --- Recognition jobs ------------------------------------------------------------------------
# A worker killed mid-task leaves its message unacknowledged in Redis; a running worker puts it
# back on the queue once it is older than the visibility timeout (which must exceed the task time
# limit), checking every interval x throttle seconds.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 2 * CELERY_TASK_TIME_LIMIT),
    "unacked_restore_interval": env_int("CELERY_UNACKED_RESTORE_INTERVAL", 10),
    "unacked_restore_throttle": env_int("CELERY_UNACKED_RESTORE_THROTTLE", 3),
}
# A job whose claim is older than this is taken to be orphaned (longer than the hard time limit,
# so its worker is surely gone) and may be claimed again, at most FACESITE_JOB_MAX_ATTEMPTS times.
FACESITE_JOB_MAX_ATTEMPTS = env_int("FACESITE_JOB_MAX_ATTEMPTS", 3)
FACESITE_JOB_STALE_AFTER = env_int("FACESITE_JOB_STALE_AFTER", CELERY_TASK_TIME_LIMIT + 30)
# Jobs whose message was lost (Redis restarted without persistence):
# recognition.services.jobs_requeue_stale re-sends a job queued (or claimed, with a stale claim)
# for longer than REQUEUE_AFTER seconds, at most MAX_REQUEUES times, then fails it with the
# reason. It runs when a worker starts, from beat every REQUEUE_INTERVAL s, and as
# `manage.py requeue_jobs`. Re-sending a job whose message still exists is harmless (the claim).
FACESITE_JOB_REQUEUE_AFTER = env_int("FACESITE_JOB_REQUEUE_AFTER", FACESITE_JOB_STALE_AFTER)
FACESITE_JOB_MAX_REQUEUES = env_int("FACESITE_JOB_MAX_REQUEUES", 3)
# Unknown faces (their vectors and crops) older than this many days are deleted by the
# retention task (beat, hourly) and `manage.py purge_unknown_faces`; 0 keeps them for ever.
FACESITE_UNKNOWN_RETENTION_DAYS = env_int("FACESITE_UNKNOWN_RETENTION_DAYS", 90)
# --- The camera and videos (docs/video.md) -------------------------------------------------------
# POST /api/v1/camera/frame: a frame's request size and longer side; each stream's tracker is
# kept in the serving process, at most MAX_STREAMS of them, forgotten STREAM_TTL s after the last frame.
FACESITE_CAMERA_MAX_FRAME_BYTES = env_int("FACESITE_CAMERA_MAX_FRAME_BYTES", 1024 * 1024)
FACESITE_CAMERA_MAX_SIDE = env_int("FACESITE_CAMERA_MAX_SIDE", 640)
FACESITE_CAMERA_MAX_STREAMS = env_int("FACESITE_CAMERA_MAX_STREAMS", 64)
FACESITE_CAMERA_STREAM_TTL = env_int("FACESITE_CAMERA_STREAM_TTL", 60)
# Where a camera stream's tracks live: "process" (memory), "cache" (the shared cache, so every web
# process continues them), "auto" (the cache when FACESITE_CACHE_URL makes it shared).
FACESITE_CAMERA_TRACKS = env_str("FACESITE_CAMERA_TRACKS", "auto")
# POST /api/v1/videos: the file's size and length; frames looked at per second of video; a video
# job's own time limit (longer than a photo's) and the age of its last progress save after which
# its worker is taken to be gone.
FACESITE_MAX_VIDEO_BYTES = env_int("FACESITE_MAX_VIDEO_BYTES", 500 * 1024 * 1024)
FACESITE_MAX_VIDEO_SECONDS = env_int("FACESITE_MAX_VIDEO_SECONDS", 3600)
FACESITE_VIDEO_SAMPLE_FPS = env_float("FACESITE_VIDEO_SAMPLE_FPS", 5.0)
FACESITE_VIDEO_TIME_LIMIT = env_int("FACESITE_VIDEO_TIME_LIMIT", 3 * 3600)
FACESITE_VIDEO_STALE_AFTER = env_int("FACESITE_VIDEO_STALE_AFTER", 120)
CELERY_BEAT_SCHEDULE = {
    "recognition-requeue-stale-jobs": {
        "task": "recognition.tasks.requeue_stale_jobs",
        "schedule": float(env_int("FACESITE_JOB_REQUEUE_INTERVAL", 60)),
    },
    "recognition-purge-unknown-faces": {
        "task": "recognition.tasks.purge_unknown_faces",
        "schedule": 3600.0,
    },
}
# Gallery index snapshots (members.snapshots): written to this folder, shared by every worker
# machine ("": MEDIA_ROOT/gallery-snapshots), by `manage.py gallery_snapshot` and by beat every
# INTERVAL seconds (0: not scheduled); a starting worker loads one and applies the change log
# from it. Log entries behind the oldest snapshot and older than the retention are deleted.
FACESITE_GALLERY_SNAPSHOT_DIR = env_str("FACESITE_GALLERY_SNAPSHOT_DIR", "")
FACESITE_GALLERY_SNAPSHOT_INTERVAL = env_int("FACESITE_GALLERY_SNAPSHOT_INTERVAL", 3600)
FACESITE_GALLERY_LOG_RETENTION_HOURS = env_float("FACESITE_GALLERY_LOG_RETENTION_HOURS", 24.0)
if FACESITE_GALLERY_SNAPSHOT_INTERVAL > 0:
    CELERY_BEAT_SCHEDULE["members-gallery-snapshot"] = {
        "task": "members.gallery_snapshot",
        "schedule": float(FACESITE_GALLERY_SNAPSHOT_INTERVAL),
    }
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# --- The recognition engine -----------------------------------------------------------------
# The engine itself knows nothing of Django: facesite.engine turns this block into an
# EngineConfig and loads the engine lazily, once per process.
FACESITE_MODEL_DIR = Path(env_str("FACESITE_MODEL_DIR", str(VAR_DIR / "models")))
_DETECTOR_FALLBACK = env_str("FACESITE_DETECTOR_FALLBACK", "yunet")
FACESITE_ENGINE = {
    "MODEL": env_str("FACESITE_MODEL", "mobilefacenet"),
    # The normal pass's detector, and the second detector of the thorough pass that a photo
    # without a face gets ("none" for none): chosen by benchmarks/detection.py.
    "DETECTOR": env_str("FACESITE_DETECTOR", "mtcnn"),
    "DETECTOR_FALLBACK": _DETECTOR_FALLBACK if _DETECTOR_FALLBACK not in ("", "none") else None,
    "YUNET_SCORE": env_float("FACESITE_YUNET_SCORE", 0.6),
    "FLIP": env_bool("FACESITE_FLIP", False),
    "MIN_FACE_SIZE": env_int("FACESITE_MIN_FACE_SIZE", 20),
    # MTCNN pyramid levels left out from the fine end (each one finds faces 1/0.709 times
    # smaller than the next); the levels kept are the package's own (see mtcnn_fast.py).
    "DETECTION_SKIP_FINEST_LEVELS": env_int("FACESITE_DETECTION_SKIP_FINEST_LEVELS", 2),
    "DETECTION_MAX_SIDE": env_int("FACESITE_DETECTION_MAX_SIDE", 1024),
    "MIN_DETECTION_SCORE": env_float("FACESITE_MIN_DETECTION_SCORE", 0.9),
    "STAGE_THRESHOLDS": (
        env_float("FACESITE_PNET_THRESHOLD", 0.6),
        env_float("FACESITE_RNET_THRESHOLD", 0.7),
        env_float("FACESITE_ONET_THRESHOLD", 0.8),
    ),
    "TF_THREADS": env_int("FACESITE_TF_THREADS", 0),
}

# Gallery matching (members.selectors.GALLERY_DEFAULTS documents every key).
FACESITE_GALLERY = {
    "MATCH": env_str("FACESITE_GALLERY_MATCH", "template"),  # or "sample": nearest enrolment face
    "IDENTIFICATION_THRESHOLD": env_float("FACESITE_IDENTIFICATION_THRESHOLD", None),
    # The share of strangers' faces that may be named as somebody; the 1:N threshold follows
    # from it and the gallery's size (faceengine.calibration), unless the threshold is set.
    "FALSE_ACCEPT_RATE": env_float("FACESITE_FALSE_ACCEPT_RATE", 0.01),
    "INDEX_BACKEND": env_str("FACESITE_INDEX_BACKEND", "auto"),  # auto | numpy | ivf | ivf_sq8 | faiss | hnsw
}

# Shared test photos (LFW and samples); tests and benchmarks that need them skip when absent.
FACESITE_TEST_DATA = Path(env_str("FACESITE_TEST_DATA", str(BASE_DIR.parent / "shared" / "faces")))

# --- Logs and health (deploy) ---------------------------------------------------------------
# One handler on stderr; LOG_FORMAT=plain (readable, the default here) or json (one object a
# line, the default in prod), each line with its request / job / task / user id (facesite.log).
LOG_FORMAT = env_str("LOG_FORMAT", "plain")
LOGGING = logging_config(LOG_FORMAT, env_str("FACESITE_LOG_LEVEL", "INFO"))
# GET /readyz (facesite.health): seconds to wait for the broker; whether to load the engine
# (TensorFlow) into the web process to answer, instead of checking that its file is there.
FACESITE_READINESS_TIMEOUT = env_float("FACESITE_READINESS_TIMEOUT", 2.0)
FACESITE_READINESS_LOAD_ENGINE = env_bool("FACESITE_READINESS_LOAD_ENGINE", False)

# --- REST API -------------------------------------------------------------------------------
# /api/v1/: token auth (accounts.ApiToken, hashed) or the session of the pages; every error is
# {"error": {"code", "message"}} (facesite.api.errors). Rates are per token, from the environment.
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_THROTTLE_CLASSES": [
        "accounts.authentication.TokenRateThrottle",
        "accounts.authentication.EngineRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "api": env_str("FACESITE_API_RATE", "600/min"),  # every call
        "engine": env_str("FACESITE_API_ENGINE_RATE", "120/min"),  # calls that run the engine
        "camera": env_str("FACESITE_CAMERA_RATE", "600/min"),  # camera frames, per token or user
    },
    "DEFAULT_PARSER_CLASSES": [
        "facesite.api.parsers.SafeJSONParser",
        "rest_framework.parsers.MultiPartParser",
        "rest_framework.parsers.FormParser",
    ],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": env_int("FACESITE_API_PAGE_SIZE", 50),
    "EXCEPTION_HANDLER": "facesite.api.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
# A whole request (several photos, or a JSON body with base64) is refused from its
# Content-Length before it is read; each photo still has FACESITE_MAX_UPLOAD_BYTES.
FACESITE_API_MAX_REQUEST_BYTES = env_int("FACESITE_API_MAX_REQUEST_BYTES", 3 * FACESITE_MAX_UPLOAD_BYTES)
# POST /api/v1/members/bulk: the zip, its entries and their unpacked size.
FACESITE_API_MAX_ZIP_BYTES = env_int("FACESITE_API_MAX_ZIP_BYTES", 200 * 1024 * 1024)
FACESITE_API_MAX_ZIP_ENTRIES = env_int("FACESITE_API_MAX_ZIP_ENTRIES", 5000)
FACESITE_API_MAX_ZIP_UNPACKED_BYTES = env_int("FACESITE_API_MAX_ZIP_UNPACKED_BYTES", 1024 * 1024 * 1024)
SPECTACULAR_SETTINGS = {
    "TITLE": "facesite API",
    "DESCRIPTION": "Face detection, recognition and member enrolment. Authenticate with "
    "`Authorization: Token <token>` (manage.py create_api_token USERNAME).",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    # Photo jobs and video jobs both have a "status"; each choice set gets its own schema name.
    "ENUM_NAME_OVERRIDES": {
        "JobStatusEnum": ["queued", "running", "done", "failed"],
        "VideoStatusEnum": ["queued", "running", "done", "failed", "cancelled"],
    },
}
# The rate-limit counts live in the cache. Without FACESITE_CACHE_URL (redis://host:6379/1)
# each process counts on its own (Django's local-memory cache): set it when serving with several.
if env_str("FACESITE_CACHE_URL", ""):
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": env_str("FACESITE_CACHE_URL")}
    }

# --- Security: login throttling -------------------------------------------------------------
# After LOGIN_THROTTLE_ATTEMPTS failed log-ins for one username, or LOGIN_THROTTLE_IP_ATTEMPTS
# from one address, every log-in for it is refused for LOGIN_THROTTLE_WINDOW seconds (pages and
# admin alike; accounts.login_throttle). The counts live in the cache: see FACESITE_CACHE_URL.
AUTHENTICATION_BACKENDS = ["accounts.backends.ThrottledModelBackend"]
LOGIN_THROTTLE_ATTEMPTS = env_int("LOGIN_THROTTLE_ATTEMPTS", 5)
LOGIN_THROTTLE_IP_ATTEMPTS = env_int("LOGIN_THROTTLE_IP_ATTEMPTS", 20)
LOGIN_THROTTLE_WINDOW = env_int("LOGIN_THROTTLE_WINDOW", 15 * 60)
# Behind a reverse proxy every caller has the proxy's REMOTE_ADDR: set this to 1 there, and only
# there, to count by the last X-Forwarded-For hop (the address the proxy saw).
LOGIN_THROTTLE_TRUST_X_FORWARDED_FOR = env_bool("LOGIN_THROTTLE_TRUST_X_FORWARDED_FOR", False)
