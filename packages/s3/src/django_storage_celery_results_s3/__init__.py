"""S3 provider for django-storage-celery-results.

A missing bucket or refused credentials raise ``ResultStoreMisconfigured``
(docs/providers/s3.md#misconfigured). Check ids: ``CHECKS``.
"""

from typing import TYPE_CHECKING

from django_storage_celery_results.providers import Deferred, Lifecycle, Provider, lazy_exports

from .__about__ import __version__
from .settings_map import S3_SETTINGS

if TYPE_CHECKING:
    from .adapter import S3Adapter
    from .checks import CHECKS, check_connectivity, check_settings
    from .lifecycle import ensure_lifecycle_rule, find_expiry_rule

#: The SDK-backed names, imported on first use: loading core's registry
#: (every process that builds a result backend) must not import this SDK.
__getattr__ = lazy_exports(
    __name__,
    {
        "adapter": ["S3Adapter"],
        "checks": ["CHECKS", "check_connectivity", "check_settings"],
        "lifecycle": ["current_rule", "ensure_lifecycle_rule", "find_expiry_rule"],
    },
)

#: Published to core's registry (the entry point names it).
provider = Provider(
    name="s3",
    distribution="django-storage-celery-results-s3",
    storage_classes=("storages.backends.s3.S3Storage",),
    adapter=Deferred(f"{__name__}.adapter.S3Adapter"),
    # Results overwrite in place, carry no ACL (private unless a bucket policy
    # says otherwise, and valid on buckets with ACLs disabled) and live in
    # their own folder, whatever the project's media settings say.
    preset_defaults={"location": "celery-results", "file_overwrite": True, "default_acl": None},
    settings_map=S3_SETTINGS,
    checks=Deferred(f"{__name__}.checks.check_settings"),
    connectivity=Deferred(f"{__name__}.checks.check_connectivity"),
    lifecycle=Lifecycle(
        rule=Deferred(f"{__name__}.lifecycle.current_rule"),
        apply=Deferred(f"{__name__}.lifecycle.ensure_lifecycle_rule"),
    ),
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
