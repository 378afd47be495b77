"""A storage that no provider knows: stands in for any third-party storage."""

import os
import tempfile

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
        return self._inner._open(name, mode)

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
        return self._inner._save(name, content)

    def get_available_name(self, name, max_length=None):
        return self._inner.get_available_name(name, max_length)
