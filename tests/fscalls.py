"""Counts the file system calls that name a path; shared by tests and bench/."""

from __future__ import annotations

import builtins
import contextlib
import os
from collections import Counter
from collections.abc import Callable, Iterator

#: (module, function) pairs that open, move, link, stat, list or remove a path.
COUNTED = [(builtins, "open")] + [
    (os, name)
    for name in (
        "open",
        "link",
        "replace",
        "rename",
        "stat",
        "lstat",
        "scandir",
        "listdir",
        "unlink",
        "makedirs",
        "mkdir",
    )
]


@contextlib.contextmanager
def counting_fs_calls() -> Iterator[Counter[str]]:
    """Counter of calls by name ("open" for the builtin, "os.open" and so on)."""
    calls: Counter[str] = Counter()
    originals = [(module, name, getattr(module, name)) for module, name in COUNTED]

    def counted(label: str, function: Callable) -> Callable:
        def wrapper(*args, **kwargs):
            calls[label] += 1
            return function(*args, **kwargs)

        return wrapper

    for module, name, function in originals:
        setattr(module, name, counted(name if module is builtins else f"os.{name}", function))
    try:
        yield calls
    finally:
        for module, name, function in originals:
            setattr(module, name, function)
