"""Django settings for the test suite and the worker subprocesses it starts.

The worker reads its result storage and broker from TEST_* environment
variables so one settings module serves every end-to-end configuration.
"""

import json
import os
import tempfile

SECRET_KEY = "tests-only-not-secret"
DEBUG = False
USE_TZ = True
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_storage_celery_results",
]
# The admin's users, sessions and permissions (results stay in the storage);
# workers never open it. Tests run on a copy in a file of their own, not in
# memory: the browser tests' live server then answers in threads that open
# their own connections instead of sharing the test's (which they would still
# be closing after the server stopped sharing it).
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.path.join(tempfile.gettempdir(), "dscr-admin.sqlite3"),
        "TEST": {"NAME": os.path.join(tempfile.gettempdir(), f"dscr-test-db-{os.getpid()}.sqlite3")},
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
ROOT_URLCONF = "support.project.urls"
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]
STATIC_URL = "/static/"
MEDIA_ROOT = os.environ.get("TEST_MEDIA_ROOT", os.path.join(tempfile.gettempdir(), "dscr-media"))
STATIC_ROOT = os.path.join(MEDIA_ROOT, "static")

CELERY_BROKER_URL = os.environ.get("TEST_BROKER_URL", "memory://")
CELERY_RESULT_BACKEND = os.environ.get("TEST_RESULT_BACKEND", "django-storage")
CELERY_RESULT_STORAGE = os.environ.get("TEST_RESULT_STORAGE", "filesystem")
CELERY_RESULT_STORAGE_CONFIG = json.loads(
    os.environ.get("TEST_RESULT_STORAGE_CONFIG")
    or json.dumps({"location": os.path.join(tempfile.gettempdir(), "dscr-results")})
)
CELERY_RESULT_SERIALIZER = os.environ.get("TEST_RESULT_SERIALIZER", "json")
CELERY_TASK_SERIALIZER = CELERY_RESULT_SERIALIZER
CELERY_ACCEPT_CONTENT = ["json", "pickle", "msgpack", "yaml"]
CELERY_RESULT_EXTENDED = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
if os.environ.get("TEST_RESULT_STORAGE_MAX_SIZE"):
    CELERY_RESULT_STORAGE_MAX_SIZE = int(os.environ["TEST_RESULT_STORAGE_MAX_SIZE"])
if os.environ.get("TEST_RESULT_BACKEND_ALWAYS_RETRY"):
    CELERY_RESULT_BACKEND_ALWAYS_RETRY = True
if os.environ.get("TEST_TASK_TRACK_STARTED"):
    CELERY_TASK_TRACK_STARTED = True
if os.environ.get("TEST_RESULT_STORAGE_TIMEOUT"):  # bench/soak.py: GCS's late answers time out
    CELERY_RESULT_STORAGE_TIMEOUT = float(os.environ["TEST_RESULT_STORAGE_TIMEOUT"])
if os.environ.get("TEST_S3_READ_TIMEOUT"):  # bench/soak.py: late answers time out
    from botocore.config import Config

    AWS_S3_CLIENT_CONFIG = Config(read_timeout=float(os.environ["TEST_S3_READ_TIMEOUT"]))
