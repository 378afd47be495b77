"""Folders that a storage cannot tell missing or create by itself.

django-storages' ``FTPStorage`` changes into its folder as it logs in, so
while that folder does not exist every call fails, with the same error as a
wrong password. One connection of our own, with the storage's own settings,
tells the two apart (the login works, changing into the folder does not) and
creates the folder before the first write. Other storages need none of this:
they raise FileNotFoundError for a missing folder and create it as they write.
"""

from __future__ import annotations

import contextlib
import ftplib
from typing import Any

from django.core.files.storage import Storage

#: Seconds to wait for the FTP server on these error-path connections.
TIMEOUT = 30


class FTPFolder:
    def __init__(self, storage: Any) -> None:
        self.storage = storage

    def _connect(self) -> ftplib.FTP:
        # FTPStorage's parsed location, private but the very values its own
        # connection uses (location from the config or FTP_STORAGE_LOCATION)
        config = self.storage._config
        ftp = ftplib.FTP_TLS(timeout=TIMEOUT) if config["secure"] else ftplib.FTP(timeout=TIMEOUT)
        ftp.encoding = self.storage.encoding
        ftp.connect(config["host"], config["port"])
        ftp.login(config["user"], config["passwd"])
        if isinstance(ftp, ftplib.FTP_TLS):
            ftp.prot_p()
        if config["active"]:
            ftp.set_pasv(False)
        return ftp

    def missing(self) -> bool:
        """True when the server takes the login but has no such folder."""
        try:
            ftp = self._connect()
        except ftplib.all_errors:
            return False  # not the folder: the server or the login fails
        try:
            ftp.cwd(self.storage._config["path"])
            return False
        except ftplib.error_perm:
            return True
        except ftplib.all_errors:
            return False
        finally:
            _close(ftp)

    def create(self) -> bool:
        """Create the folder, each missing level; True if it was missing."""
        if not self.missing():
            return False
        path = self.storage._config["path"]
        ftp = self._connect()
        try:
            if path.startswith("/"):
                ftp.cwd("/")
            for part in (part for part in path.split("/") if part):
                try:
                    ftp.cwd(part)
                except ftplib.error_perm:
                    with contextlib.suppress(ftplib.error_perm):  # another worker may just have made it
                        ftp.mkd(part)
                    ftp.cwd(part)
        finally:
            _close(ftp)
        return True


def _close(ftp: ftplib.FTP) -> None:
    try:
        ftp.quit()
    except ftplib.all_errors:
        ftp.close()


def class_paths(storage: Storage) -> set[str]:
    """The dotted paths of the storage's class and its bases."""
    return {f"{cls.__module__}.{cls.__qualname__}" for cls in type(storage).__mro__}


def folder_of(storage: Storage) -> FTPFolder | None:
    if "storages.backends.ftp.FTPStorage" in class_paths(storage) and hasattr(storage, "_config"):
        return FTPFolder(storage)
    return None
