"""The S3 provider published to core's registry."""

from __future__ import annotations

from django_storage_celery_results.providers import Provider

from .adapter import S3Adapter
from .checks import check_connectivity, check_settings
from .settings_map import S3_SETTINGS

provider = Provider(
    name="s3",
    distribution="django-storage-celery-results-s3",
    storage_classes=("storages.backends.s3.S3Storage",),
    adapter=S3Adapter,
    # Results overwrite in place, carry no ACL (private unless a bucket policy
    # says otherwise, and valid on buckets with ACLs disabled) and live in
    # their own folder, whatever the project's media settings say.
    preset_defaults={"location": "celery-results", "file_overwrite": True, "default_acl": None},
    settings_map=S3_SETTINGS,
    checks=check_settings,
    connectivity=check_connectivity,
)
