"""Google Cloud Storage provider for django-storage-celery-results."""

from .__about__ import __version__
from .adapter import GCSAdapter
from .checks import check_connectivity, check_settings
from .lifecycle import ensure_lifecycle_rule, find_expiry_rule
from .provider import provider
from .settings_map import GCS_SETTINGS

__all__ = [
    "GCS_SETTINGS",
    "GCSAdapter",
    "__version__",
    "check_connectivity",
    "check_settings",
    "ensure_lifecycle_rule",
    "find_expiry_rule",
    "provider",
]
