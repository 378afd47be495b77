"""Counts the file system calls that name a path; shared by tests and bench/."""

from __future__ import annotations

import builtins
import contextlib
import os
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

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

    def record(label: str, args: tuple) -> None:
        calls[label] += 1

    with _watching(record):
        yield calls


@dataclass
class Touched:
    """Calls that named a path under one folder, and the distinct paths they named."""

    calls: int = 0
    paths: set[str] = field(default_factory=set)


@contextlib.contextmanager
def touching(folder: str) -> Iterator[Touched]:
    """The calls that name a path under folder (other paths and file descriptors are ignored)."""
    touched = Touched()
    lock = threading.Lock()
    root = os.path.join(os.path.abspath(folder), "")

    def record(label: str, args: tuple) -> None:
        paths = set()
        for arg in args[:2]:  # link, replace and rename name two paths
            if isinstance(arg, (str, os.PathLike)):
                path = os.path.abspath(os.fspath(arg))
                if path.startswith(root):
                    paths.add(path)
        if paths:
            with lock:
                touched.calls += 1
                touched.paths |= paths

    with _watching(record):
        yield touched


@contextlib.contextmanager
def _watching(record: Callable[[str, tuple], None]) -> Iterator[None]:
    originals = [(module, name, getattr(module, name)) for module, name in COUNTED]

    def counted(label: str, function: Callable) -> Callable:
        def wrapper(*args, **kwargs):
            record(label, args)
            return function(*args, **kwargs)

        return wrapper

    for module, name, function in originals:
        setattr(module, name, counted(name if module is builtins else f"os.{name}", function))
    try:
        yield
    finally:
        for module, name, function in originals:
            setattr(module, name, function)
