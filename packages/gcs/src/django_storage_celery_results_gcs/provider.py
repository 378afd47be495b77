"""The Google Cloud Storage provider published to core's registry."""

from __future__ import annotations

from django_storage_celery_results.providers import Provider

from .adapter import GCSAdapter
from .checks import check_connectivity, check_settings
from .settings_map import GCS_SETTINGS

provider = Provider(
    name="gcs",
    distribution="django-storage-celery-results-gcs",
    storage_classes=("storages.backends.gcloud.GoogleCloudStorage",),
    adapter=GCSAdapter,
    # Results overwrite in place, carry no predefined ACL (the bucket's IAM
    # or default object ACL decides, and writes work with uniform
    # bucket-level access) and live in their own folder, whatever the
    # project's media settings say.
    preset_defaults={"location": "celery-results", "file_overwrite": True, "default_acl": None},
    settings_map=GCS_SETTINGS,
    checks=check_settings,
    connectivity=check_connectivity,
)
