"""S3 provider for django-storage-celery-results.

Errors: a missing bucket (``NoSuchBucket``), rejected credentials
(``InvalidAccessKeyId``, ``SignatureDoesNotMatch``, an expired token) and
credentials that may not read results raise
``django_storage_celery_results.exceptions.ResultStoreMisconfigured`` naming
the bucket and ``CELERY_RESULT_STORAGE_CONFIG['bucket_name']`` /
``AWS_STORAGE_BUCKET_NAME``, in the worker and in the client, instead of
reading as PENDING. A missing result is ``404 NoSuchKey``, or ``403
AccessDenied`` for credentials without ``s3:ListBucket``: the first time a
read is refused with 403 in a process, the adapter lists that one key. If
the listing is refused too, the credentials lack ``s3:ListBucket`` and every
403 on a read means "no result yet" from then on, with no further request
(the documented setup keeps working). If the listing is allowed, a 403 means
a missing result only when the key is not listed; a listed key that cannot
be read is an error (grant ``s3:GetObject``, and ``kms:Decrypt`` for SSE-KMS).

Check ids: ``CHECKS`` (``django_storage_celery_results_s3.E010`` ...).
"""

from django_storage_celery_results.providers import Provider

from .__about__ import __version__
from .adapter import S3Adapter
from .checks import CHECKS, check_connectivity, check_settings
from .lifecycle import ensure_lifecycle_rule, find_expiry_rule
from .settings_map import S3_SETTINGS

#: Published to core's registry (the entry point names it).
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

__all__ = [
    "CHECKS",
    "S3_SETTINGS",
    "S3Adapter",
    "__version__",
    "check_connectivity",
    "check_settings",
    "ensure_lifecycle_rule",
    "find_expiry_rule",
    "provider",
]
