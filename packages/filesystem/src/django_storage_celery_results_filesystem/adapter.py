"""Results as files: atomic, conditional between processes, listed in one pass.

Every write goes to a temporary file in the same folder, is written and
fsynced, then moved into place, so a reader sees the old or the new result
and never a partial one. The version of a result is its file identity
(device, inode, mtime, size): each write makes a new inode.

* create-only: ``os.link`` of the temporary file fails if the name exists;
* version-matched: lock the current file with ``flock``, check it is still
  the one at that name with the expected version, then ``os.replace``.
  A writer that waited on the lock finds the name now points at a new inode
  and loses, so exactly one of several racing writers wins.
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import os
import secrets
from collections.abc import Callable, Iterator

from django.core.files.storage import FileSystemStorage

from django_storage_celery_results.adapters import (
    CREATE,
    OVERWRITE,
    Content,
    ListedObject,
    PutMode,
    StorageAdapter,
    StoredObject,
    Update,
    refuse_oversized,
)
from django_storage_celery_results.exceptions import StoredObjectTooLarge, VersionMismatch

try:
    import fcntl
except ImportError:  # Windows: no flock, so no version-matched writes
    fcntl = None  # type: ignore[assignment]

TEMP_PREFIX = ".celery-tmp-"
#: File system types where a read waits on the network, so batch reads from
#: several threads pay off; on a local disk a read takes microseconds and
#: thread hand-offs would cost more than they save (measured: 2.5x slower).
NETWORK_FILESYSTEMS = frozenset(
    {
        "nfs",
        "nfs4",
        "cifs",
        "smb3",
        "smbfs",
        "ceph",
        "glusterfs",
        "lustre",
        "9p",
        "fuse.sshfs",
        "fuse.s3fs",
        "fuse.gcsfuse",
        "fuse.blobfuse",
        "fuse.juicefs",
        "afs",
        "beegfs",
        "gpfs",
    }
)
_RETRYABLE_ERRNOS = frozenset({errno.EAGAIN, errno.EINTR, errno.EBUSY, errno.ESTALE, errno.ETIMEDOUT})


_NO_INHERIT = getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
_READ_FLAGS = os.O_RDONLY | _NO_INHERIT
_CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NO_INHERIT


def _read_to_end(fd: int, size: int, limit: int | None) -> bytes:
    """The file's bytes, size of them as fstat said in one call; a short read
    (a network file system) or a file written in place since is read to its
    end, never past limit + 1 bytes."""
    data = os.read(fd, size + 1)
    if len(data) == size:
        return data
    chunks = [data]
    total = len(data)
    while limit is None or total <= limit:
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        total += len(chunk)
    raise StoredObjectTooLarge(None)


def _is_temporary(name: str) -> bool:
    return name.startswith(TEMP_PREFIX)


def _version(stat: os.stat_result) -> str:
    return f"{stat.st_dev}:{stat.st_ino}:{stat.st_mtime_ns}:{stat.st_size}"


def filesystem_type(path: str, mounts_file: str = "/proc/self/mounts") -> str | None:
    """The type of the file system holding path, from the longest matching mount point."""
    try:
        with open(mounts_file, encoding="utf-8", errors="replace") as handle:
            mounts = [line.split() for line in handle]
    except OSError:
        return None  # not Linux: assume a local disk
    path = os.path.realpath(path)
    best, kind = "", None
    for fields in mounts:
        if len(fields) < 3:
            continue
        point = fields[1].replace("\\040", " ")
        inside = path == point or path.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best):
            best, kind = point, fields[2]
    return kind


class FileSystemAdapter(StorageAdapter):
    conditional_writes = fcntl is not None
    storage: FileSystemStorage

    def __init__(self, storage: FileSystemStorage) -> None:
        super().__init__(storage)
        self.root = os.fspath(storage.location)  # already absolute
        self.parallel_reads = filesystem_type(self.root) in NETWORK_FILESYSTEMS

    def _path(self, name: str) -> str:
        # Result names are single path components (see keys.py); refusing
        # anything else here is cheaper than Django's safe_join on every read.
        if not name or name in (".", "..") or "/" in name or "\\" in name or "\0" in name:
            raise ValueError(f"{name!r} is not a single file name")
        return os.path.join(self.root, name)

    def read(self, name: str) -> StoredObject | None:
        # os.open and os.read, not open(): no buffered file object to build
        # for a read that takes microseconds (measured at 1 KiB: 4.0 us, 6.7 with open()).
        try:
            fd = os.open(self._path(name), _READ_FLAGS)
        except FileNotFoundError:
            return None
        try:
            stat = os.fstat(fd)
            version = _version(stat)
            refuse_oversized(stat.st_size, self.read_limit, version)
            return StoredObject(_read_to_end(fd, stat.st_size, self.read_limit), version)
        finally:
            os.close(fd)

    def put(
        self, name: str, data: bytes, mode: PutMode = OVERWRITE, content: Content = Content()
    ) -> str | None:
        path = self._path(name)
        temp, version = self._write_temp(data)
        try:
            if mode == OVERWRITE:
                os.replace(temp, path)
            elif mode == CREATE:
                try:
                    os.link(temp, path)
                except FileExistsError:
                    raise VersionMismatch(name) from None
            elif isinstance(mode, Update) and fcntl is not None:
                self._replace_if_version(temp, path, mode.version, name)
            else:
                raise ValueError(f"unsupported put mode {mode!r}")
            return version
        finally:
            with contextlib.suppress(FileNotFoundError):  # already moved into place
                os.unlink(temp)

    def _write_temp(self, data: bytes) -> tuple[str, str]:
        fd, temp = self._create_temp()
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
            mode = self.storage.file_permissions_mode
            if mode is not None:
                os.fchmod(fd, mode)
            version = _version(os.fstat(fd))
        except BaseException:
            os.unlink(temp)
            raise
        finally:
            os.close(fd)
        return temp, version

    def _create_temp(self) -> tuple[int, str]:
        """A new temporary file of ours in the folder (mode 0600, as mkstemp
        makes them), created with the folder when it is missing."""
        for _ in range(100):
            temp = os.path.join(self.root, TEMP_PREFIX + secrets.token_hex(8))
            try:
                return os.open(temp, _CREATE_FLAGS, 0o600), temp
            except FileExistsError:
                continue  # 1 in 2**64
            except FileNotFoundError:
                self._make_root()
        raise FileExistsError(errno.EEXIST, "no free temporary file name", self.root)

    def _make_root(self) -> None:
        mode = self.storage.directory_permissions_mode
        if mode is None:
            os.makedirs(self.root, exist_ok=True)
            return
        old_umask = os.umask(0o777 & ~mode)
        try:
            os.makedirs(self.root, mode, exist_ok=True)
        finally:
            os.umask(old_umask)

    @staticmethod
    def _replace_if_version(temp: str, path: str, expected: str, name: str) -> None:
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            raise VersionMismatch(name) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            locked = os.fstat(fd)
            try:
                current = os.stat(path)
            except FileNotFoundError:
                raise VersionMismatch(name) from None
            if _version(locked) != expected or (current.st_dev, current.st_ino) != (
                locked.st_dev,
                locked.st_ino,
            ):
                raise VersionMismatch(name)
            os.replace(temp, path)
        finally:
            os.close(fd)  # releases the lock

    def delete(self, name: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._path(name))

    def _files(self, wanted: Callable[[str], bool]) -> Iterator[ListedObject]:
        """Regular files of the folder whose names are wanted, in one scan."""
        try:
            entries = os.scandir(self.root)
        except FileNotFoundError:
            return
        with entries:
            for entry in entries:
                if not wanted(entry.name):
                    continue
                try:
                    if not entry.is_file(follow_symlinks=False):
                        continue
                    stat = entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue  # removed since the scan began
                modified = datetime.datetime.fromtimestamp(stat.st_mtime, tz=datetime.timezone.utc)
                yield ListedObject(entry.name, modified, stat.st_size)

    def list(
        self, wanted: Callable[[str], bool] = lambda name: True, prefix: str = ""
    ) -> Iterator[ListedObject]:
        def listed(name: str) -> bool:
            return name.startswith(prefix) and not _is_temporary(name) and wanted(name)

        yield from self._files(listed)

    def remove_leftovers(self, older_than: datetime.datetime) -> int:
        """Temporary files of writers that died between writing and renaming."""
        stale = [
            item.name for item in self._files(_is_temporary) if item.modified and item.modified < older_than
        ]
        for name in stale:
            self.delete(name)
        return len(stale)

    def is_retryable(self, exc: BaseException) -> bool:
        if isinstance(exc, OSError) and exc.errno in _RETRYABLE_ERRNOS:
            return True
        return super().is_retryable(exc)
