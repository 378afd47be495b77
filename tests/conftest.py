"""Shared fixtures: Celery apps over real storages, a Redis server, workers.

The helpers behind them live in the support package (support/ at the workspace root).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from celery import Celery

from support.processes import EmulatorProcess, RedisServer, Worker
from support.proxy import CountingProxy
from support.stores import STORES, Emulator, StoreUnderTest
from support.stores.gcs import gcs_client
from support.stores.s3 import s3_client

# google-auth looks for the GCE metadata server (169.254.169.254) when no
# credentials are configured; it is never on this machine, so never ask it
# (read when google-auth is imported; worker subprocesses inherit it).
os.environ.setdefault("NO_GCE_CHECK", "true")


@pytest.fixture
def make_app():
    """Build a Celery app configured with lowercase settings, as non-Django apps are."""
    apps: list[Celery] = []

    def build(**conf) -> Celery:
        app = Celery(f"test-{len(apps)}", set_as_current=False)
        app.conf.update(
            {
                "broker_url": "memory://",
                "result_backend": "django-storage",
                "accept_content": ["json", "pickle", "msgpack", "yaml"],
                **conf,
            }
        )
        apps.append(app)
        return app

    yield build
    for app in apps:
        app.close()


@pytest.fixture
def current(make_app):
    """Build an app as make_app does and make it Celery's current app (the one the checks read)."""

    def build(**conf) -> Celery:
        app = make_app(**conf)
        app.set_current()
        return app

    return build


@pytest.fixture
def results_dir(tmp_path: Path) -> Path:
    return tmp_path / "results"


@pytest.fixture
def fs_app(make_app, results_dir):
    return make_app(result_storage="filesystem", result_storage_config={"location": str(results_dir)})


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    try:
        server = RedisServer()
    except FileNotFoundError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"redis-server is required in CI: {exc}")
        pytest.skip(str(exc))
    except RuntimeError as exc:
        pytest.fail(str(exc))
    yield server.url
    server.stop()


@pytest.fixture(scope="session")
def chromium() -> Iterator:
    """Headless Chromium (Debian's, through its chromedriver) for the session's browser tests."""
    from support import browser

    missing = browser.missing()
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"the browser tests need it in CI: {missing}")
        pytest.skip(missing)
    started = browser.Browser()
    yield started.driver
    started.stop()


class Emulators:
    """Each store's emulator, started the first time a test asks for it."""

    def __init__(self) -> None:
        self.running: dict[str, Emulator] = {}

    def __getitem__(self, preset: str) -> Emulator:
        if preset not in self.running:
            missing = STORES[preset].missing()
            if missing:  # skip without an optional test dependency; in CI, fail instead
                if os.environ.get("CI"):
                    pytest.fail(f"required in CI: {missing}")
                pytest.skip(missing)
            self.running[preset] = STORES[preset].start()
        return self.running[preset]

    def stop(self) -> None:
        for emulator in self.running.values():
            emulator.stop()


@pytest.fixture(scope="session")
def emulators() -> Iterator[Emulators]:
    running = Emulators()
    yield running
    running.stop()


@pytest.fixture
def fresh_store(emulators, monkeypatch) -> Callable[[str], StoreUnderTest]:
    """A fresh bucket on a store's emulator, by preset: fresh_store("s3")."""
    return lambda preset: STORES[preset](emulators[preset], monkeypatch)


# -- one store's pieces, for the tests of what only that provider does ------------


def store_fixtures(preset: str) -> None:
    """<preset>_proxy (the session's counting proxy in front of the store's
    emulator), and for one test <preset>_store (a fresh bucket, the proxy's
    record empty, the environment its client needs set for this test and the
    workers started in it), <preset>_bucket, <preset>_config and <preset>_app."""

    @pytest.fixture(scope="session", name=f"{preset}_proxy")
    def proxy(emulators) -> CountingProxy:
        return emulators[preset].proxy

    @pytest.fixture(name=f"{preset}_store")
    def store(fresh_store) -> StoreUnderTest:
        return fresh_store(preset)

    @pytest.fixture(name=f"{preset}_bucket")
    def bucket(request) -> str:
        return request.getfixturevalue(f"{preset}_store").bucket

    @pytest.fixture(name=f"{preset}_config")
    def config(request) -> dict:
        return request.getfixturevalue(f"{preset}_store").config

    @pytest.fixture(name=f"{preset}_app")
    def app(request, make_app):
        config = request.getfixturevalue(f"{preset}_config")
        return make_app(result_storage=preset, result_storage_config=config)

    for kind, fixture in {
        "proxy": proxy,
        "store": store,
        "bucket": bucket,
        "config": config,
        "app": app,
    }.items():
        globals()[f"{preset}_{kind}"] = fixture  # module attributes are where pytest finds fixtures


for _preset in STORES:
    store_fixtures(_preset)


@pytest.fixture(scope="session")
def moto_server(emulators) -> EmulatorProcess:
    return emulators["s3"].server


@pytest.fixture
def s3_raw(moto_server):
    """A boto3 client straight to the emulator (uncounted), to inspect objects."""
    return s3_client(moto_server.url)


@pytest.fixture(scope="session")
def gcs_server(emulators) -> EmulatorProcess:
    return emulators["gcs"].server


@pytest.fixture
def gcs_raw(gcs_server):
    """A client straight to the emulator (uncounted), to inspect objects."""
    return gcs_client(gcs_server.url)


@pytest.fixture(scope="session")
def azurite(emulators) -> EmulatorProcess:
    return emulators["azure"].server


@pytest.fixture
def azure_container(azure_bucket) -> str:
    return azure_bucket


@pytest.fixture
def azure_raw(azure_store):
    """A container client straight to the emulator (uncounted), to inspect blobs."""
    return azure_store.raw


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture
def start_worker(tmp_path, request):
    workers: list[Worker] = []

    def start(**test_env: str) -> Worker:
        env = {f"TEST_{key.upper()}": value for key, value in test_env.items()}
        worker = Worker(env, tmp_path / f"worker-{len(workers)}.log")
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.stop()
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        for worker in workers:  # the worker's side of a failure, in the test output
            print(f"--- {worker.log.name} ---\n{worker.output()}")


def _needs(*modules: str) -> None:
    """Skip without an optional test dependency; in CI, fail instead."""
    for module in modules:
        try:
            __import__(module)
        except ImportError:
            if os.environ.get("CI"):
                pytest.fail(f"{module} is required in CI: pip install {module}")
            pytest.skip(f"{module} is not installed (pip install {module})")


@pytest.fixture(scope="session")
def ftp_server(tmp_path_factory) -> Iterator:
    """A real FTP server (pyftpdlib) for django-storages' FTPStorage."""
    _needs("pyftpdlib")
    from support.file_servers import FTPServer

    server = FTPServer(tmp_path_factory.mktemp("ftp-root"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def sftp_server(tmp_path_factory) -> Iterator:
    """A real SFTP server (asyncssh) for django-storages' SFTPStorage (paramiko)."""
    _needs("asyncssh", "paramiko")
    from support.file_servers import SFTPServer

    server = SFTPServer(tmp_path_factory.mktemp("sftp-root"))
    yield server
    server.stop()


# -- native chords driven through the backend (test_chords, test_chord_faults) ----

#: The three ways of counting: state objects (a folder), markers and listings
#: (S3), append objects (Azure).
CHORD_STORAGES = ["filesystem", "s3", "azure"]


@pytest.fixture(params=CHORD_STORAGES, name="chord_app")
def chord_app_fixture(request, make_app, tmp_path):
    if request.param != "filesystem":
        config = request.getfixturevalue(f"{request.param}_config")
    else:
        config = {"location": str(tmp_path / "results")}
    app = make_app(
        result_storage=request.param,
        result_storage_config=config,
        task_always_eager=True,
        task_store_eager_result=True,
    )
    calls = tmp_path / "callback-calls"

    @app.task(name="tests.record_callback", shared=False)
    def record_callback(values):
        total = sum(sum(value) if isinstance(value, list) else value for value in values)  # nested headers
        with calls.open("a") as handle:
            handle.write(f"{total}\n")
        return total

    app.calls = calls
    return app
