"""Azure Blob Storage provider for django-storage-celery-results."""

from .__about__ import __version__
from .adapter import AzureAdapter
from .checks import check_connectivity, check_settings
from .lifecycle import lifecycle_policy, lifecycle_rule
from .provider import provider
from .settings_map import AZURE_SETTINGS

__all__ = [
    "AZURE_SETTINGS",
    "AzureAdapter",
    "__version__",
    "check_connectivity",
    "check_settings",
    "lifecycle_policy",
    "lifecycle_rule",
    "provider",
]
