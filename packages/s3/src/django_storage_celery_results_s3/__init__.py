"""S3 provider for django-storage-celery-results."""

from .__about__ import __version__
from .adapter import S3Adapter
from .checks import check_connectivity, check_settings
from .lifecycle import ensure_lifecycle_rule, find_expiry_rule
from .provider import provider
from .settings_map import S3_SETTINGS

__all__ = [
    "S3_SETTINGS",
    "S3Adapter",
    "__version__",
    "check_connectivity",
    "check_settings",
    "ensure_lifecycle_rule",
    "find_expiry_rule",
    "provider",
]
