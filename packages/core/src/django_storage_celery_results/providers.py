"""The provider contract and the registry that finds installed providers.

A provider package publishes one ``Provider`` in the entry-point group
``django_storage_celery_results.providers``. Core uses it to find the adapter
for a storage class, to expand a preset name and to run provider checks. A
provider that fails to import is logged and reported, never fatal to others.

Loading the registry imports no store SDK: a provider names its adapter,
checks and lifecycle helpers by dotted path (``Deferred``), imported when
first used, and storage classes are matched against the classes a storage
already has. A process that uses one provider imports that provider's SDK
only (boto3 alone takes seconds).
"""

from __future__ import annotations

import functools
import importlib
import logging
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any

from django.core.checks import CheckMessage
from django.utils.module_loading import import_string

from .adapters import StorageAdapter

logger = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "django_storage_celery_results.providers"

#: Presets of the providers we publish, to name the package to install.
KNOWN_PRESETS = {
    "filesystem": "django-storage-celery-results-filesystem",
    "s3": "django-storage-celery-results-s3",
    "gcs": "django-storage-celery-results-gcs",
    "azure": "django-storage-celery-results-azure",
}

#: Other names users try for a preset (compared without case, "-", "_" or
#: spaces): suggested in the error, never accepted, so each preset keeps one name.
PRESET_ALIASES = {
    **dict.fromkeys(("aws", "amazon", "boto", "boto3", "s3boto", "s3boto3", "s3storage", "minio"), "s3"),
    **dict.fromkeys(("gs", "gcp", "gcloud", "google", "googlecloud", "googlecloudstorage"), "gcs"),
    **dict.fromkeys(("azureblob", "azurestorage", "blob", "blobstorage", "abs"), "azure"),
    **dict.fromkeys(("file", "files", "fs", "local", "folder", "disk", "filesystemstorage"), "filesystem"),
}

#: Storage classes our providers serve, to suggest the package to install.
KNOWN_STORAGE_CLASSES = {
    "django.core.files.storage.FileSystemStorage": "filesystem",
    "storages.backends.s3.S3Storage": "s3",
    "storages.backends.s3boto3.S3Boto3Storage": "s3",
    "storages.backends.gcloud.GoogleCloudStorage": "gcs",
    "storages.backends.azure_storage.AzureStorage": "azure",
}


def missing_provider_for(storage_class: type) -> str | None:
    """The distribution that would serve this storage class, if one is known."""
    for path, preset in KNOWN_STORAGE_CLASSES.items():
        if served_at(path, storage_class.__mro__) is not None:
            return KNOWN_PRESETS[preset]
    return None


def served_at(path: str, mro: Sequence[type]) -> int | None:
    """Where in mro the class at dotted path stands, or None; imports nothing.

    A class in a storage's MRO is already imported: it is matched by where it
    is defined, or by a name re-exported from a module already imported
    (``django.core.files.storage.FileSystemStorage``)."""
    for depth, cls in enumerate(mro):
        if f"{cls.__module__}.{cls.__qualname__}" == path:
            return depth
    module, _, name = path.rpartition(".")
    served = getattr(sys.modules.get(module), name, None)
    return mro.index(served) if isinstance(served, type) and served in mro else None


@dataclass(frozen=True)
class Deferred:
    """A provider's class or function named by dotted path, imported on first
    use, so that loading the registry imports no store's SDK."""

    path: str

    def resolve(self) -> Any:
        return import_string(self.path)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.resolve()(*args, **kwargs)


def resolve(value: Any) -> Any:
    """What a Provider field stands for: the object a Deferred names, or value itself."""
    return value.resolve() if isinstance(value, Deferred) else value


def lazy_exports(package: str, modules: Mapping[str, Sequence[str]]) -> Callable[[str], Any]:
    """A provider package's module ``__getattr__`` (PEP 562): each public name
    imported from its submodule on first use (``modules``: submodule -> names)."""
    where = {name: module for module, names in modules.items() for name in names}

    def __getattr__(name: str) -> Any:
        if name not in where:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f"{package}.{where[name]}"), name)

    return __getattr__


@dataclass(frozen=True)
class Setting:
    """One row of a provider's settings map: a storage constructor argument,
    the Django settings that feed it (first set one wins) and what it means."""

    argument: str
    names: tuple[str, ...]
    meaning: str


@dataclass(frozen=True)
class Lifecycle:
    """How a provider's store expires results by itself (the command line's ``lifecycle``)."""

    #: The rule that expires every result now, as (label, days), or None.
    rule: Callable[[Any], tuple[str, int] | None] | None = None
    #: Creates or updates that rule for result_expires (seconds): "created",
    #: "updated" or "unchanged".
    apply: Callable[[Any, float], str] | None = None
    #: Where the store's client cannot apply it (Azure's management plane):
    #: the policy document and the command line that applies it.
    policy: Callable[[Any, float], tuple[dict[str, Any], str]] | None = None


@dataclass(frozen=True)
class Provider:
    #: Preset name, usable as CELERY_RESULT_STORAGE.
    name: str
    #: Distribution to install, for error messages.
    distribution: str
    #: Dotted paths of the storage classes the adapter serves (and subclasses):
    #: where each is defined, or a module that re-exports it and is imported with it.
    storage_classes: tuple[str, ...]
    #: Builds the adapter for one storage instance (here and below: the
    #: callable, or a Deferred naming it).
    adapter: Callable[[Any], StorageAdapter]
    #: The class the preset selects (by default the first storage class) and
    #: its result-appropriate defaults.
    preset_class: str = ""
    preset_defaults: Mapping[str, Any] = field(default_factory=dict)
    #: The provider's settings map, for validation and the README.
    settings_map: Sequence[Setting] = ()
    #: Extra Django system checks for a configured adapter, without network
    #: calls: the adapter and the resolved configuration it was built from.
    checks: Callable[[StorageAdapter, Any], list[CheckMessage]] | None = None
    #: Checks that talk to the store (``manage.py check --deploy``): the
    #: adapter and result_expires in seconds (None when results never expire).
    connectivity: Callable[[StorageAdapter, float | None], list[CheckMessage]] | None = None
    #: The store's own expiry of results, where it has one.
    lifecycle: Lifecycle | None = None

    def __post_init__(self) -> None:
        if not self.preset_class:
            object.__setattr__(self, "preset_class", self.storage_classes[0])

    @property
    def settings(self) -> Mapping[str, tuple[str, ...]]:
        """Constructor argument -> the Django settings that feed it, in order of precedence."""
        return {setting.argument: setting.names for setting in self.settings_map}


@dataclass(frozen=True)
class Registry:
    providers: Mapping[str, Provider]
    #: Entry-point name -> error text, for providers that failed to load.
    broken: Mapping[str, str]

    def for_storage(self, storage_class: type) -> Provider | None:
        """The provider serving the most specific class in the storage's MRO."""
        best: tuple[int, Provider] | None = None
        for provider in self.providers.values():
            for path in provider.storage_classes:
                depth = served_at(path, storage_class.__mro__)
                if depth is not None and (best is None or depth < best[0]):
                    best = (depth, provider)
        return best[1] if best else None


@functools.lru_cache(maxsize=1)
def registry() -> Registry:
    providers: dict[str, Provider] = {}
    broken: dict[str, str] = {}
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        try:
            provider = entry.load()
            if not isinstance(provider, Provider):
                raise TypeError(f"{entry.value} is not a Provider")
        except Exception as exc:  # a broken provider must not break the others
            broken[entry.name] = f"{type(exc).__name__}: {exc}"
            logger.warning("Result storage provider %r failed to load: %s", entry.name, broken[entry.name])
            continue
        providers[provider.name] = provider
    return Registry(providers, broken)
