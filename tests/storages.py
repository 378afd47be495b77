"""A storage that no provider knows: stands in for any third-party storage."""

from django.core.files.storage import FileSystemStorage, Storage
from django.utils.deconstruct import deconstructible


@deconstructible
class ThirdPartyFolderStorage(Storage):
    """Keeps files in a folder through FileSystemStorage, without subclassing it."""

    def __init__(self, location: str) -> None:
        self._inner = FileSystemStorage(location=location)
        self.location = location

    def _open(self, name, mode="rb"):
        return self._inner._open(name, mode)

    def _save(self, name, content):
        return self._inner._save(name, content)

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
