"""FileSystemStorage adapter for django-storage-celery-results."""

from .__about__ import __version__
from .adapter import FileSystemAdapter
from .provider import provider

__all__ = ["FileSystemAdapter", "__version__", "provider"]
