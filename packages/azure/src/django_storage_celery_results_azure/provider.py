"""The Azure provider published to core's registry."""

from __future__ import annotations

from django_storage_celery_results.providers import Provider

from .adapter import AzureAdapter
from .checks import check_connectivity, check_settings
from .settings_map import AZURE_SETTINGS

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
)
