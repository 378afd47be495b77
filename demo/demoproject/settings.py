"""A minimal Django project whose Celery results live in a local folder."""

import os
from pathlib import Path

# Everything the demo writes stays under demo/.run (git-ignored).
BASE_DIR = Path(os.environ.get("DEMO_RUN_DIR", Path(__file__).resolve().parent.parent / ".run"))

SECRET_KEY = "demo-only-not-secret"
INSTALLED_APPS = ["django_storage_celery_results", "demoproject"]
DATABASES = {}
USE_TZ = True
MEDIA_ROOT = BASE_DIR / "media"

# Results: the filesystem preset with nothing else set stores them in
# BASE_DIR / "celery-results", never under MEDIA_ROOT.
CELERY_RESULT_BACKEND = "django-storage"
CELERY_RESULT_STORAGE = "filesystem"

# A broker without a server: kombu's filesystem transport.
BROKER_FOLDER = BASE_DIR / "broker"
CELERY_BROKER_URL = "filesystem://"
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "data_folder_in": str(BROKER_FOLDER),
    "data_folder_out": str(BROKER_FOLDER),
    "control_folder": str(BASE_DIR / "control"),
    "store_processed": False,
}
CELERY_TASK_TRACK_STARTED = True
CELERY_RESULT_EXTENDED = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
