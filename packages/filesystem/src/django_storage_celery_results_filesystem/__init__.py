"""FileSystemStorage adapter for django-storage-celery-results."""

from .__about__ import __version__
from .adapter import FileSystemAdapter
from .provider import CHECKS, provider

__all__ = ["CHECKS", "FileSystemAdapter", "__version__", "provider"]
