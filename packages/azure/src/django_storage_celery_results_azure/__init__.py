"""Azure Blob Storage provider for django-storage-celery-results.

A missing container or refused credentials raise ``ResultStoreMisconfigured``
(docs/providers/azure.md#misconfigured). Check ids: ``CHECKS``.
"""

from django_storage_celery_results.providers import Lifecycle, Provider

from .__about__ import __version__
from .adapter import AzureAdapter
from .checks import CHECKS, check_connectivity, check_settings
from .lifecycle import lifecycle_policy, lifecycle_rule, policy_and_command
from .settings_map import AZURE_SETTINGS

#: Published to core's registry (the entry point names it).
provider = Provider(
    name="azure",
    distribution="django-storage-celery-results-azure",
    storage_classes=("storages.backends.azure_storage.AzureStorage",),
    adapter=AzureAdapter,
    # Results overwrite in place (AzureStorage keeps existing blobs by
    # default) and live in their own folder, whatever the media settings say.
    preset_defaults={"location": "celery-results", "overwrite_files": True},
    settings_map=AZURE_SETTINGS,
    checks=check_settings,
    connectivity=check_connectivity,
    lifecycle=Lifecycle(policy=policy_and_command),
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
