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
    "django.contrib.contenttypes",
    "django_storage_celery_results",
]
DATABASES: dict[str, dict[str, str]] = {}
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
