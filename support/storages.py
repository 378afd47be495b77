"""A storage that no provider knows: stands in for any third-party storage."""

import contextlib
import os
import tempfile

from django.core.files import File
from django.core.files.storage import FileSystemStorage, Storage
from django.utils.deconstruct import deconstructible


@deconstructible
class ThirdPartyFolderStorage(Storage):
    """Keeps files in a folder without subclassing FileSystemStorage.

    Like an object store (and unlike a plain folder) it writes each object
    whole and overwrites in place, so readers never see a half-written file:
    the semantics the generic adapter is meant for.
    """

    def __init__(self, location: str) -> None:
        self._inner = FileSystemStorage(location=location)
        self.location = location

    def _open(self, name, mode="rb"):
        return self._inner._open(name, mode)  # type: ignore[attr-defined]

    def _save(self, name, content):
        os.makedirs(self.location, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=self.location, prefix=".upload-")
        with os.fdopen(fd, "wb") as handle:
            for chunk in content.chunks():
                handle.write(chunk)
        os.replace(temp, self._inner.path(name))
        return name

    def get_available_name(self, name, max_length=None):
        return name  # overwrite, as object stores do

    def delete(self, name):
        self._inner.delete(name)

    def exists(self, name):
        return self._inner.exists(name)

    def listdir(self, path):
        return self._inner.listdir(path)

    def get_modified_time(self, name):
        return self._inner.get_modified_time(name)

    def size(self, name):
        return self._inner.size(name)


@deconstructible
class PlainFolderStorage(ThirdPartyFolderStorage):
    """Writes like a plain folder: creates the file, then fills it, and keeps
    existing files (saving a copy under another name), as FileSystemStorage
    does. Readers can see a file that exists but is still empty."""

    def _save(self, name, content):
        return self._inner._save(name, content)  # type: ignore[attr-defined]

    def get_available_name(self, name, max_length=None):
        return self._inner.get_available_name(name, max_length)


class MinimalStorage(Storage):
    """Only what Django requires of a Storage: _open, _save, delete, exists
    and listdir. No modified times, no size, no path; it writes in place, and
    keeps existing files (Storage's own get_available_name picks another name)."""

    def __init__(self, location: str) -> None:
        self.location = location

    def _path(self, name: str) -> str:
        return os.path.join(self.location, name)

    def _open(self, name, mode="rb"):
        return File(open(self._path(name), mode))  # the File closes it

    def _save(self, name, content):
        os.makedirs(self.location, exist_ok=True)  # the folder comes with the first write
        with open(self._path(name), "wb") as handle:
            for chunk in content.chunks():
                handle.write(chunk)
        return name

    def delete(self, name):
        with contextlib.suppress(FileNotFoundError):
            os.remove(self._path(name))

    def exists(self, name):
        return os.path.exists(self._path(name))

    def listdir(self, path):
        with os.scandir(self._path(path)) as entries:
            found = list(entries)
        return [e.name for e in found if e.is_dir()], [e.name for e in found if e.is_file()]


#: The Storage API methods a counting storage records.
COUNTED_METHODS = ("open", "save", "delete", "exists", "listdir", "get_modified_time", "size")


def counting(storage_class: type) -> type:
    """A subclass of storage_class that records each Storage API call by name
    in its ``calls`` list, calls the storage makes of itself included."""

    def recorder(method_name: str):
        method = getattr(storage_class, method_name)

        def recorded(self, *args, **kwargs):
            type(self).calls.append(method_name)
            return method(self, *args, **kwargs)

        return recorded

    methods = {name: recorder(name) for name in COUNTED_METHODS if hasattr(storage_class, name)}
    return type(f"Counting{storage_class.__name__}", (storage_class,), {"calls": [], **methods})
