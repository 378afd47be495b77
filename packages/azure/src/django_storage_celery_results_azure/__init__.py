"""Azure Blob Storage provider for django-storage-celery-results.

A missing container or refused credentials raise ``ResultStoreMisconfigured``
(docs/providers/azure.md#misconfigured). Check ids: ``CHECKS``.
"""

from typing import TYPE_CHECKING

from django_storage_celery_results.providers import Deferred, Lifecycle, Provider, lazy_exports

from .__about__ import __version__
from .settings_map import AZURE_SETTINGS

if TYPE_CHECKING:
    from .adapter import AzureAdapter
    from .checks import CHECKS, check_connectivity, check_settings
    from .lifecycle import lifecycle_policy, lifecycle_rule

#: The SDK-backed names, imported on first use: loading core's registry
#: (every process that builds a result backend) must not import this SDK.
__getattr__ = lazy_exports(
    __name__,
    {
        "adapter": ["AzureAdapter"],
        "checks": ["CHECKS", "check_connectivity", "check_settings"],
        "lifecycle": ["lifecycle_policy", "lifecycle_rule", "policy_and_command"],
    },
)

#: Published to core's registry (the entry point names it).
provider = Provider(
    name="azure",
    distribution="django-storage-celery-results-azure",
    storage_classes=("storages.backends.azure_storage.AzureStorage",),
    adapter=Deferred(f"{__name__}.adapter.AzureAdapter"),
    # Results overwrite in place (AzureStorage keeps existing blobs by
    # default) and live in their own folder, whatever the media settings say.
    preset_defaults={"location": "celery-results", "overwrite_files": True},
    settings_map=AZURE_SETTINGS,
    checks=Deferred(f"{__name__}.checks.check_settings"),
    connectivity=Deferred(f"{__name__}.checks.check_connectivity"),
    lifecycle=Lifecycle(policy=Deferred(f"{__name__}.lifecycle.policy_and_command")),
)

__all__ = [
    "AZURE_SETTINGS",
    "CHECKS",
    "AzureAdapter",
    "__version__",
    "check_connectivity",
    "check_settings",
    "lifecycle_policy",
    "lifecycle_rule",
    "provider",
]
