"""The filesystem provider published to core's registry."""

from __future__ import annotations

import os

from django.core import checks

from django_storage_celery_results.adapters import StorageAdapter
from django_storage_celery_results.catalogue import Catalogue, CheckId
from django_storage_celery_results.providers import Provider

from .adapter import FileSystemAdapter, fcntl

CHECKS = Catalogue(
    "django_storage_celery_results_filesystem",
    CheckId("E001", "the results folder cannot be created or written by this user"),
    CheckId("W001", "the platform has no flock: no atomic conditional updates"),
)


def check_folder(adapter: StorageAdapter, config: object = None) -> list[checks.CheckMessage]:
    assert isinstance(adapter, FileSystemAdapter)
    messages: list[checks.CheckMessage] = []
    folder = adapter.root
    existing = folder
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.access(existing, os.W_OK | os.X_OK):
        messages.append(
            CHECKS.message(
                "E001",
                f"Celery results folder {folder} cannot be created or written by this user.",
                "Create it with write permission for the web and worker users, "
                "or set CELERY_RESULT_STORAGE_CONFIG['location'].",
            )
        )
    if fcntl is None:
        messages.append(
            CHECKS.message(
                "W001", "This platform has no flock: results are written without atomic conditional updates."
            )
        )
    return messages


provider = Provider(
    name="filesystem",
    distribution="django-storage-celery-results-filesystem",
    storage_classes=("django.core.files.storage.FileSystemStorage",),
    adapter=FileSystemAdapter,
    checks=check_folder,
)
