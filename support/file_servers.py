"""Real FTP and SFTP servers on loopback, for the generic adapter on django-storages'
FTPStorage and SFTPStorage. Each serves a folder from a thread of the test
process (worker subprocesses connect over TCP) and counts the protocol
commands it answers, so a test can say what an operation costs."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

USER = "results"
#: Long and unusual: a test that finds it in any text has found a leak.
PASSWORD = "pw-Leak3d-If-Seen-9f2c"


class _Counted:
    """Protocol commands answered, by name, since the last reset."""

    def __init__(self) -> None:
        self.commands: Counter[str] = Counter()
        self._lock = threading.Lock()

    def count(self, name: str) -> None:
        with self._lock:
            self.commands[name] += 1

    @contextlib.contextmanager
    def counting(self) -> Iterator[Counter[str]]:
        """The commands answered inside the block (a fresh Counter)."""
        with self._lock:
            before = Counter(self.commands)
        seen: Counter[str] = Counter()
        yield seen
        with self._lock:
            seen.update(self.commands - before)


class FTPServer(_Counted):
    """pyftpdlib serving root to USER/PASSWORD on 127.0.0.1."""

    def __init__(self, root: Path) -> None:
        super().__init__()
        from pyftpdlib.authorizers import DummyAuthorizer
        from pyftpdlib.handlers import FTPHandler
        from pyftpdlib.servers import FTPServer as Server

        quiet = logging.getLogger("pyftpdlib")
        quiet.addHandler(logging.NullHandler())  # else serve_forever() logs every command
        quiet.propagate = False
        authorizer = DummyAuthorizer()
        authorizer.add_user(USER, PASSWORD, str(root), perm="elradfmwMT")
        counted = self

        class Handler(FTPHandler):
            def pre_process_command(self, line: str, cmd: str, arg: str) -> None:
                counted.count(cmd)
                super().pre_process_command(line, cmd, arg)

        Handler.authorizer = authorizer
        self.root = root
        self._server = Server(("127.0.0.1", 0), Handler)
        self.port = self._server.address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"timeout": 0.2, "handle_exit": False}, daemon=True
        )
        self._thread.start()

    def location(self, folder: str, password: str = PASSWORD) -> str:
        """An FTPStorage location, credentials in the URL as django-storages documents."""
        return f"ftp://{USER}:{password}@127.0.0.1:{self.port}/{folder}/"

    def stop(self) -> None:
        self._server.close_all()
        self._thread.join(5)


#: The SFTP requests counted (asyncssh's SFTPServer methods, one per request).
SFTP_REQUESTS: tuple[str, ...] = ("open", "close", "read", "write", "stat", "lstat", "fstat", "setstat")
SFTP_REQUESTS += ("scandir", "remove", "mkdir", "rename", "posix_rename", "realpath")


class SFTPServer(_Counted):
    """asyncssh's SFTP server, chrooted to root, taking USER/PASSWORD, on 127.0.0.1."""

    def __init__(self, root: Path) -> None:
        super().__init__()
        import asyncssh

        logging.getLogger("asyncssh").setLevel(logging.WARNING)
        counted = self

        class Server(asyncssh.SSHServer):
            def begin_auth(self, username: str) -> bool:
                return True

            def password_auth_supported(self) -> bool:
                return True

            def validate_password(self, username: str, password: str) -> bool:
                return username == USER and password == PASSWORD

        class Files(asyncssh.SFTPServer):
            def __init__(self, chan: Any) -> None:
                super().__init__(chan, chroot=str(root).encode())

        for name in SFTP_REQUESTS:
            setattr(Files, name, _counting(counted, name, getattr(asyncssh.SFTPServer, name)))

        self.root = root
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()

        async def listen() -> Any:
            return await asyncssh.listen(
                "127.0.0.1",
                0,
                server_host_keys=[asyncssh.generate_private_key("ssh-ed25519")],
                server_factory=Server,
                sftp_factory=Files,
            )

        self._acceptor = asyncio.run_coroutine_threadsafe(listen(), self._loop).result(30)
        self.port = self._acceptor.get_port()

    def options(self, folder: str, known_hosts: Path) -> dict:
        """SFTPStorage options: the password inside ``params``, as django-storages documents."""
        return {
            "host": "127.0.0.1",
            "root_path": f"/{folder}",
            "known_host_file": str(known_hosts),
            "params": {
                "port": self.port,
                "username": USER,
                "password": PASSWORD,
                "allow_agent": False,
                "look_for_keys": False,
            },
        }

    def stop(self) -> None:
        async def shutdown() -> None:
            self._acceptor.close()
            for task in asyncio.all_tasks() - {asyncio.current_task()}:
                task.cancel()  # sessions of clients still connected
            # wait_closed() also waits for those clients to hang up, which a
            # storage kept by a test's backend may never do
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._acceptor.wait_closed(), 5)

        with contextlib.suppress(concurrent.futures.TimeoutError):
            asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)


def _counting(counted: _Counted, name: str, method: Any) -> Any:
    def counted_method(self: Any, *args: Any, **kwargs: Any) -> Any:
        counted.count(name)
        return method(self, *args, **kwargs)

    return counted_method
