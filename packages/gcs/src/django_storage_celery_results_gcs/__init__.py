"""Google Cloud Storage provider for django-storage-celery-results.

A missing bucket or refused credentials raise ``ResultStoreMisconfigured``
(docs/providers/gcs.md#misconfigured). Check ids: ``CHECKS``. The private
google-cloud-storage APIs used are in ``internals.py``.
"""

from django_storage_celery_results.providers import Lifecycle, Provider

from .__about__ import __version__
from .adapter import GCSAdapter
from .checks import CHECKS, check_connectivity, check_settings
from .lifecycle import current_rule, ensure_lifecycle_rule, find_expiry_rule
from .settings_map import GCS_SETTINGS

#: Published to core's registry (the entry point names it).
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
    lifecycle=Lifecycle(rule=current_rule, apply=ensure_lifecycle_rule),
)

__all__ = [
    "CHECKS",
    "GCS_SETTINGS",
    "GCSAdapter",
    "__version__",
    "check_connectivity",
    "check_settings",
    "ensure_lifecycle_rule",
    "find_expiry_rule",
    "provider",
]
