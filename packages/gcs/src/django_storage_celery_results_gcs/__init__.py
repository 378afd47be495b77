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

from .__about__ import __version__
from .adapter import GCSAdapter
from .checks import CHECKS, check_connectivity, check_settings
from .lifecycle import ensure_lifecycle_rule, find_expiry_rule
from .provider import provider
from .settings_map import GCS_SETTINGS

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
