"""The generic adapter on third-party storages that talk to a real server.

django-storages' FTPStorage against a pyftpdlib server and SFTPStorage
(paramiko) against asyncssh's SFTP server, both on loopback, and a minimal
Storage implementing only what Django requires. What each operation costs is
counted twice: Storage API calls (a counting subclass) and the protocol
commands the server answered. The whole Celery contract with a real worker
on these storages is in test_behaviour.py.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import logging
import os
import time
import traceback
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from celery import states
from celery.result import GroupResult
from django.core import checks
from django.utils.module_loading import import_string

from django_storage_celery_results.checks import redacted
from django_storage_celery_results.expiry import CleanupReport
from django_storage_celery_results.redact import StorageError
from support.file_servers import PASSWORD
from support.storages import MinimalStorage, counting

FTP = "storages.backends.ftp.FTPStorage"
SFTP = "storages.backends.sftpstorage.SFTPStorage"
WRONG_PASSWORD = "wrong-Pa55word-Never-Shown"


@pytest.fixture
def folder() -> str:
    """A folder name of its own on the server: it does not exist yet."""
    return f"results-{uuid.uuid4().hex[:12]}"


def ftp_app(make_app, ftp_server, folder: str, password: str = PASSWORD, **conf):
    return make_app(
        result_storage=FTP,
        result_storage_config={"location": ftp_server.location(folder, password)},
        **conf,
    )


def texts_of(exc: BaseException) -> str:
    """Everything a worker log shows of an error: its traceback and its chain."""
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))


# -- credentials ---------------------------------------------------------------


def test_ftp_describe_and_logs_hide_the_password(make_app, ftp_server, folder, caplog):
    with caplog.at_level(logging.DEBUG, logger="django_storage_celery_results"):
        app = ftp_app(make_app, ftp_server, folder, result_expires=3600)
        backend = app.backend  # its start-up debug line names the storage
        backend.mark_as_done("described", 1)
        assert backend.get_task_meta("described")["result"] == 1
        report = backend.cleanup()  # its info line names the storage too
    where = f"FTPStorage at ftp://results:***@127.0.0.1:{ftp_server.port}/{folder}/"
    assert backend.adapter.describe() == where
    assert where in repr(backend.adapter)
    assert report == CleanupReport(read=1)
    assert where in caplog.text
    assert "Celery results cleanup of" in caplog.text
    assert PASSWORD not in caplog.text


def test_ftp_errors_hide_the_password_and_are_not_pending(make_app, ftp_server, folder, caplog):
    # a wrong password: FTPStorage's own error repeats it in a dict of its settings
    backend = ftp_app(make_app, ftp_server, folder, password=WRONG_PASSWORD).backend
    with pytest.raises(StorageError) as raised:
        backend.get_task_meta("any")
    error = raised.value
    assert error.cause_type.__name__ == "FTPStorageException"
    assert str(error).startswith("reading 'celery-task-meta-any' from FTPStorage at ftp://results:***@")
    assert "Connection or login error" in str(error)
    assert "'passwd': '***'" in str(error)
    assert error.__cause__ is None and error.__suppress_context__
    assert WRONG_PASSWORD not in texts_of(error)
    with pytest.raises(StorageError) as raised:
        backend.mark_as_done("any", 1)
    assert WRONG_PASSWORD not in texts_of(raised.value)
    with caplog.at_level(logging.INFO, logger="django_storage_celery_results"):
        report = backend.cleanup()  # never raises: what stopped it is logged, redacted
    assert report.error is not None and "FTPStorageException" in report.error
    assert report.deleted == 0
    assert "cleanup stopped by a storage error" in caplog.text
    assert WRONG_PASSWORD not in caplog.text + report.error


def test_a_worker_never_logs_the_ftp_password(start_worker, redis_url, ftp_server, folder, make_app):
    config = {"location": ftp_server.location(folder, WRONG_PASSWORD)}
    worker = start_worker(broker_url=redis_url, result_storage=FTP, result_storage_config=json.dumps(config))
    client = make_app(broker_url=redis_url, result_storage=FTP, result_storage_config=config)
    client.send_task("tests.add", (1, 2))
    deadline = time.monotonic() + 60
    while "FTPStorageException" not in worker.output():
        assert time.monotonic() < deadline, worker.output()
        time.sleep(0.2)
    time.sleep(1)  # the rest of the error's lines
    assert "'passwd': '***'" in worker.output()
    assert WRONG_PASSWORD not in worker.output()


def test_sftp_describe_and_errors_hide_the_password(make_app, sftp_server, folder, tmp_path, caplog):
    options = sftp_server.options(folder, tmp_path / "known_hosts")
    with caplog.at_level(logging.DEBUG, logger="django_storage_celery_results"):
        backend = make_app(result_storage=SFTP, result_storage_config=options).backend
        backend.mark_as_done("described", 1)
    assert backend.adapter.describe() == f"SFTPStorage on 127.0.0.1 at /{folder}"
    assert PASSWORD not in caplog.text
    # an error that quotes the configured password is redacted, whatever its shape
    assert backend.adapter.redact(f"login {options['params']} failed") == (
        f"login {{'port': {sftp_server.port}, 'username': 'results', 'password': '***', "
        "'allow_agent': False, 'look_for_keys': False} failed"
    )
    assert PASSWORD not in backend.adapter.redact(f"bad password {PASSWORD}")


# -- a missing folder ----------------------------------------------------------


@dataclass
class Store:
    """One storage under test: its setting, its config and where its files land."""

    name: str
    storage: object
    config: dict
    files: Path


@pytest.fixture(params=["ftp", "sftp", "minimal"])
def store(request, folder, tmp_path) -> Store:
    if request.param == "ftp":
        server = request.getfixturevalue("ftp_server")
        return Store("ftp", FTP, {"location": server.location(folder)}, server.root / folder)
    if request.param == "sftp":
        server = request.getfixturevalue("sftp_server")
        return Store("sftp", SFTP, server.options(folder, tmp_path / "known_hosts"), server.root / folder)
    return Store("minimal", MinimalStorage, {"location": str(tmp_path / folder)}, tmp_path / folder)


def test_a_missing_folder_reads_as_pending_and_the_first_write_creates_it(store, make_app):
    backend = make_app(result_storage=store.storage, result_storage_config=store.config).backend
    assert not store.files.exists()
    assert backend.get_task_meta("not-yet")["status"] == states.PENDING
    assert not backend.task_result_exists("not-yet")
    assert backend.cleanup().deleted == 0  # nothing stored, nothing to list
    backend.forget("not-yet")
    backend.mark_as_done("first", 1)
    assert (store.files / "celery-task-meta-first").exists()
    assert backend.get_task_meta("first", cache=False)["result"] == 1


def test_a_late_duplicate_never_overwrites_success(store, make_app):
    backend = make_app(result_storage=store.storage, result_storage_config=store.config).backend
    backend.mark_as_started("dup")
    backend.mark_as_done("dup", "first")
    backend.mark_as_started("dup")  # a redelivered copy starts again
    backend.mark_as_failure("dup", ValueError("late"))
    meta = backend.get_task_meta("dup", cache=False)
    assert (meta["status"], meta["result"]) == (states.SUCCESS, "first")


# -- expiry without modified times --------------------------------------------


def test_cleanup_by_date_done_where_the_storage_has_no_modified_times(make_app, tmp_path, caplog):
    location = tmp_path / "minimal"
    app = make_app(
        result_storage=MinimalStorage, result_storage_config={"location": str(location)}, result_expires=1
    )
    backend = app.backend
    for task_id in ("old-1", "old-2"):
        backend.mark_as_done(task_id, 1)
    backend.save_group("old-group", GroupResult("old-group", [], app=app))
    backend.mark_as_started("running")  # no date_done until it finishes
    # a group stored by an older version, without a date
    backend.set(backend.get_key_for_group("undated-group"), backend.encode({"result": ["undated-group", []]}))
    (location / "unrelated.txt").write_bytes(b"not a result")
    time.sleep(1.5)
    backend.mark_as_done("fresh", 1)
    with caplog.at_level(logging.INFO, logger="django_storage_celery_results"):
        report = backend.cleanup()
    assert report == CleanupReport(results=2, groups=1, read=6, skipped=2)
    assert sorted(p.name for p in location.iterdir()) == [
        "celery-task-meta-fresh",
        "celery-task-meta-running",
        "celery-taskset-meta-undated-group",
        "unrelated.txt",
    ]
    assert "6 results were read for their date_done (one read per result)" in caplog.text
    assert "2 kept with no date_done" in caplog.text


def test_cleanup_reports_what_it_deleted(make_app, results_dir):
    app = make_app(
        result_storage="filesystem", result_storage_config={"location": str(results_dir)}, result_expires=3600
    )
    backend = app.backend
    backend.mark_as_done("old", 1)
    backend.save_group("old-group", GroupResult("old-group", [], app=app))
    backend.mark_as_done("new", 1)
    past = (datetime.datetime.now() - datetime.timedelta(hours=2)).timestamp()
    for name in ("celery-task-meta-old", "celery-taskset-meta-old-group"):
        os.utime(results_dir / name, (past, past))
    report = backend.cleanup()
    assert report == CleanupReport(results=1, groups=1)
    assert report.deleted == 2
    assert make_app(result_expires=None, result_storage="filesystem").backend.cleanup() == CleanupReport()


# -- what each operation costs ---------------------------------------------------

#: Per storage and operation: the Storage API calls made, and the protocol
#: commands the server answered (FTP commands; SFTP requests). FTPStorage
#: checks its connection with PWD before each call and opens a data
#: connection (TYPE, PASV) for each transfer and listing; its delete() and
#: Storage.save()'s choice of a free name each list the folder (NLST).
COSTS = {
    "ftp": {
        "store new": (
            ["open", "exists", "save", "exists"],
            {"PWD": 7, "CWD": 5, "TYPE": 4, "PASV": 4, "RETR": 1, "NLST": 2, "STOR": 1},
        ),
        "read": (["open"], {"PWD": 2, "CWD": 2, "TYPE": 1, "PASV": 1, "RETR": 1}),
        "read unknown id": (
            ["open", "exists"],
            {"PWD": 3, "CWD": 1, "TYPE": 2, "PASV": 2, "RETR": 1, "NLST": 1},
        ),
        "STARTED then SUCCESS": (
            ["open", "save", "exists", "exists", "delete", "exists", "save", "exists", "delete", "exists"],
            {"PWD": 15, "CWD": 10, "TYPE": 8, "PASV": 8, "RETR": 1, "NLST": 5, "STOR": 2, "DELE": 2},
        ),
        "forget": (["delete", "exists"], {"PWD": 2, "TYPE": 1, "PASV": 1, "NLST": 1, "DELE": 1}),
        "cleanup of 4 expired": (
            ["listdir", "get_modified_time"] + ["open"] * 4 + ["delete", "exists"] * 4,
            {"PWD": 17, "CWD": 8, "TYPE": 9, "PASV": 9, "LIST": 1, "RETR": 4, "NLST": 4, "DELE": 4},
        ),
    },
    "sftp": {
        "store new": (["open", "save", "exists"], {"open": 2, "stat": 3, "write": 1, "close": 1}),
        "read": (["open"], {"open": 1, "read": 2, "close": 1}),
        "read unknown id": (["open"], {"open": 1}),
        "STARTED then SUCCESS": (
            ["open", "save", "exists", "exists", "delete", "save", "exists", "delete"],
            {"open": 3, "read": 2, "close": 3, "stat": 7, "write": 2, "remove": 2},
        ),
        "forget": (["delete"], {"remove": 1}),
        "cleanup of 4 expired": (
            ["listdir"] + ["get_modified_time"] * 4 + ["delete"] * 4,
            {"scandir": 1, "lstat": 2, "stat": 4, "remove": 4},
        ),
    },
    "minimal": {
        "store new": (["open", "save", "exists"], {}),
        "read": (["open"], {}),
        "read unknown id": (["open"], {}),
        "STARTED then SUCCESS": (
            ["open", "save", "exists", "exists", "delete", "save", "exists", "delete"],
            {},
        ),
        "forget": (["delete"], {}),
        "cleanup of 4 expired": (["listdir", "get_modified_time"] + ["open"] * 4 + ["delete"] * 4, {}),
    },
}


class NoServer:
    """The minimal storage keeps files in a local folder: no protocol to count."""

    @contextlib.contextmanager
    def counting(self) -> Iterator[Counter]:
        yield Counter()


def test_calls_per_operation(store, make_app, request):
    storage_class = import_string(store.storage) if isinstance(store.storage, str) else store.storage
    counted = counting(storage_class)
    server = request.getfixturevalue(f"{store.name}_server") if store.name != "minimal" else NoServer()
    backend = make_app(result_storage=counted, result_storage_config=store.config, result_expires=1).backend
    backend.mark_as_done("warm-up", 1)  # creates the folder and opens the connection
    backend.forget("warm-up")
    backend.mark_as_started("twice")
    for task_id in ("old-1", "old-2", "old-3"):
        backend.mark_as_done(task_id, 1)
    operations = {
        "store new": lambda: backend.mark_as_done("new", 1),
        "read": lambda: backend.get_task_meta("new", cache=False),
        "read unknown id": lambda: backend.get_task_meta("unknown", cache=False),
        "STARTED then SUCCESS": lambda: backend.mark_as_done("twice", 2),
        "forget": lambda: backend.forget("twice"),
        "cleanup of 4 expired": lambda: (time.sleep(1.2), backend.cleanup()),
    }
    measured = {}
    for label, operation in operations.items():
        counted.calls.clear()
        with server.counting() as commands:
            operation()
        measured[label] = (list(counted.calls), dict(commands))
    for label, (calls, commands) in measured.items():
        total = sum(commands.values())
        print(f"{store.name:8} {label:22} {len(calls):3} Storage calls {calls} {total:3} {commands}")
    assert measured == COSTS[store.name]


def test_check_findings_hide_the_storages_credentials(make_app, ftp_server, folder):
    adapter = ftp_app(make_app, ftp_server, folder).backend.adapter
    finding = checks.Warning(f"cannot reach {ftp_server.location(folder)}", hint=f"is {PASSWORD} right?")
    [shown] = redacted([finding], adapter)
    assert shown.msg == f"cannot reach ftp://results:***@127.0.0.1:{ftp_server.port}/{folder}/"
    assert shown.hint == "is *** right?"
