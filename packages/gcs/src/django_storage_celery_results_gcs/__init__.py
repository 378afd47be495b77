"""Google Cloud Storage provider for django-storage-celery-results.

Errors: a missing bucket, and credentials that are rejected (401, a failed
token refresh) or may not read (403), raise
``django_storage_celery_results.exceptions.ResultStoreMisconfigured`` naming
the bucket and ``CELERY_RESULT_STORAGE_CONFIG['bucket_name']`` /
``GS_BUCKET_NAME``, in the worker and in the client, instead of reading as
PENDING. A write's 404 can only mean a missing bucket. A read's 404 is the
same for a missing result and for a missing bucket (GCS tells them apart
only in the wording of its message, which is not part of the API, and
fake-gcs-server not at all), so the adapter trusts a 404 once the bucket has
answered any read or write of this process; before that, the first 404 is
taken at its word and the second costs one listing of that key (a 404 there
is a missing bucket), made at most once per process. A client polling a
result in a missing bucket so gets the error at its second poll.

Check ids: ``CHECKS``. The private google-cloud-storage APIs used are in
``internals.py``.
"""

from django_storage_celery_results.providers import Provider

from .__about__ import __version__
from .adapter import GCSAdapter
from .checks import CHECKS, check_connectivity, check_settings
from .lifecycle import ensure_lifecycle_rule, find_expiry_rule
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
