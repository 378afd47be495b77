"""Advice for a name we cannot use: the closest match, what a module offers, what to install.

Every "did you mean" in the settings errors (configuration keys, preset
names, storage class paths) comes from ``closest``, so they all match the
same way: the same name in another case or spelling first, then a known
alias, then the nearest spelling.
"""

from __future__ import annotations

import difflib
import importlib
import pkgutil
import re
from collections.abc import Iterable, Mapping
from types import ModuleType

from django.core.files.storage import Storage

from .exceptions import ImproperlyConfigured

#: Where the usual third-party storage modules come from, for install hints.
DISTRIBUTION_OF_MODULE = {"storages": "django-storages"}


def closest(word: str, choices: Iterable[str], aliases: Mapping[str, str] | None = None) -> str | None:
    """The choice the user most likely meant by word, or None.

    Names compare without case, ``-``, ``_`` or spaces (``"S3"``, ``"Bucket-Name"``);
    aliases (keys in that folded form) name a choice that is spelled otherwise.
    """
    folded = {_fold(choice): choice for choice in choices}
    key = _fold(word)
    if key in folded:
        return folded[key]
    if aliases and key in aliases:
        return aliases[key]
    close = difflib.get_close_matches(key, list(folded), n=1)
    return folded[close[0]] if close else None


def _fold(name: str) -> str:
    return re.sub(r"[-_\s]", "", name.casefold())


def import_storage_class(path: str, source: str) -> object:
    """The object a dotted path names, or an error saying which part is wrong and what exists."""
    module_path, _, attribute = path.rpartition(".")
    if not module_path or not attribute:
        raise ImproperlyConfigured(
            f"{source}: {path!r} is not a dotted path to a Storage class",
            hint="For example 'django.core.files.storage.FileSystemStorage'.",
        )
    try:
        module = importlib.import_module(module_path)
    except ModuleNotFoundError as exc:
        raise _module_not_found(path, module_path, exc, source) from None
    except Exception as exc:  # the module exists but fails to import (a missing dependency, ...)
        raise ImproperlyConfigured(
            f"{source}: cannot import {path!r}: importing {module_path} failed with "
            f"{type(exc).__name__}: {exc}"
        ) from None
    try:
        return getattr(module, attribute)
    except AttributeError:
        raise _attribute_not_found(module, attribute, source) from None


def _module_not_found(path: str, module_path: str, exc: ModuleNotFoundError, source: str) -> Exception:
    missing = exc.name or ""
    top = module_path.split(".", 1)[0]
    distribution = DISTRIBUTION_OF_MODULE.get(top)
    message = f"{source}: cannot import {path!r} ({exc})"
    if missing == top:
        install = f"Install it with: pip install {distribution}" if distribution else None
        return ImproperlyConfigured(
            message,
            hint=install or f"Check the spelling, and that the package providing {top!r} is installed.",
        )
    if not f"{module_path}.".startswith(f"{missing}."):  # a module that the named one imports
        return ImproperlyConfigured(
            f"{message}: {module_path} needs the module {missing!r}, which is not installed",
            hint=f"Install the package that provides {missing!r}.",
        )
    # The package is there but not this module of it: a typo, or a version without it.
    parent_path, _, name = missing.rpartition(".")
    modules = _submodules(parent_path)
    guess = closest(name, modules)
    mean = f"; did you mean '{parent_path}.{guess}'?" if guess else ""
    advice = [f"The modules of {parent_path}: {', '.join(modules)}."] if modules else []
    if distribution:
        advice.append(f"A newer {distribution} may have it: pip install {distribution} --upgrade")
    return ImproperlyConfigured(
        f"{message}: {parent_path} has no module {name!r}{mean}", hint=" ".join(advice) or None
    )


def _attribute_not_found(module: ModuleType, attribute: str, source: str) -> Exception:
    classes = storage_classes(module)
    guess = closest(attribute, classes)
    mean = f"; did you mean '{module.__name__}.{guess}'?" if guess else ""
    offer = f" Its Storage classes: {', '.join(classes)}." if classes else " It has no Storage class."
    return ImproperlyConfigured(
        f"{source}: the module {module.__name__} has no attribute {attribute!r}{mean}{offer}"
    )


def storage_classes(module: ModuleType) -> list[str]:
    """The public Storage subclasses a module offers, preferring those it defines."""
    found = {
        name: value
        for name, value in vars(module).items()
        if not name.startswith("_")
        and isinstance(value, type)
        and issubclass(value, Storage)
        and value is not Storage
    }
    own = [name for name, value in found.items() if value.__module__.startswith(module.__name__)]
    return sorted(own or found)


def _submodules(package_path: str) -> list[str]:
    try:
        package = importlib.import_module(package_path)
    except Exception:
        return []
    return sorted(info.name for info in pkgutil.iter_modules(getattr(package, "__path__", [])))
