"""The filesystem provider published to core's registry."""

from __future__ import annotations

import os

from django.core import checks

from django_storage_celery_results.adapters import StorageAdapter
from django_storage_celery_results.providers import Provider

from .adapter import FileSystemAdapter, fcntl


def check_folder(adapter: StorageAdapter) -> list[checks.CheckMessage]:
    assert isinstance(adapter, FileSystemAdapter)
    messages: list[checks.CheckMessage] = []
    folder = adapter.root
    existing = folder
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.access(existing, os.W_OK | os.X_OK):
        messages.append(
            checks.Error(
                f"Celery results folder {folder} cannot be created or written by this user.",
                hint="Create it with write permission for the web and worker users, "
                "or set CELERY_RESULT_STORAGE_CONFIG['location'].",
                id="django_storage_celery_results_filesystem.E001",
            )
        )
    if fcntl is None:
        messages.append(
            checks.Warning(
                "This platform has no flock: results are written without atomic conditional updates.",
                id="django_storage_celery_results_filesystem.W001",
            )
        )
    return messages


provider = Provider(
    name="filesystem",
    distribution="django-storage-celery-results-filesystem",
    storage_classes=("django.core.files.storage.FileSystemStorage",),
    adapter=FileSystemAdapter,
    preset_class="django.core.files.storage.FileSystemStorage",
    checks=check_folder,
)
