"""The packages install on their own and work under the earlier configuration.

Builds the packages from their folders into a fresh virtual environment
(no workspace, no editable installs) and runs the earlier package's exact
settings there: this proves the metadata, the entry points and py.typed.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap

import pytest

from support.processes import REPO
from support.stores.azure import azurite_connection_string

pytestmark = pytest.mark.e2e

EARLIER_CONFIGURATION = textwrap.dedent(
    """
    import json
    import sys
    import django
    from django.conf import settings

    backend, storage, config, extra, typed_modules = sys.argv[1:]
    settings.configure(
        INSTALLED_APPS=["django_storage_celery_results"],
        CELERY_RESULT_BACKEND=backend,
        CELERY_RESULT_STORAGE=storage,
        CELERY_RESULT_STORAGE_CONFIG=json.loads(config),
        **json.loads(extra),
    )
    django.setup()
    from celery import Celery
    from importlib.resources import files

    app = Celery("earlier")
    app.config_from_object("django.conf:settings", namespace="CELERY")
    app.backend.mark_as_done("c0ffee00-0000-4000-8000-000000000001", {"ok": [1, 2]})
    app.backend._cache.clear()
    meta = app.backend.get_task_meta("c0ffee00-0000-4000-8000-000000000001")
    typed = all(files(name).joinpath("py.typed").is_file() for name in typed_modules.split(","))
    print(type(app.backend).__name__, type(app.backend.adapter).__name__, meta["result"], typed)
    """
)
BACKENDS = ("django_storage_celery_results.backends.StorageBackend", "django-storage")


def _install(venv, packages) -> None:
    uv = shutil.which("uv")
    if uv:
        subprocess.run([uv, "venv", "--quiet", "--python", sys.executable, str(venv)], check=True)
        subprocess.run(
            [uv, "pip", "install", "--quiet", "--python", str(venv / "bin" / "python"), *packages], check=True
        )
    else:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [
                str(venv / "bin" / "python"),
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                *packages,
            ],
            check=True,
        )


def run_earlier(
    venv, tmp_path, backend: str, storage: str, config: dict, extra: dict, typed: str
) -> list[str]:
    script = tmp_path / "earlier.py"
    script.write_text(EARLIER_CONFIGURATION)
    run = subprocess.run(
        [
            str(venv / "bin" / "python"),
            str(script),
            backend,
            storage,
            json.dumps(config),
            json.dumps(extra),
            typed,
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    return run.stdout.split()


def test_fresh_install_works_with_the_earlier_configuration(tmp_path):
    venv = tmp_path / "venv"
    _install(venv, [str(REPO / "packages" / "core"), str(REPO / "packages" / "filesystem")])
    for backend in BACKENDS:
        location = tmp_path / backend
        printed = run_earlier(
            venv,
            tmp_path,
            backend,
            "django.core.files.storage.FileSystemStorage",
            {"location": str(location)},
            {},
            "django_storage_celery_results,django_storage_celery_results_filesystem",
        )
        assert printed == ["StorageBackend", "FileSystemAdapter", "{'ok':", "[1,", "2]}", "True"]
        assert (location / "celery-task-meta-c0ffee00-0000-4000-8000-000000000001").is_file()


def test_fresh_install_of_the_s3_provider_serves_the_earlier_s3_configuration(
    tmp_path, s3_proxy, s3_bucket, s3_raw
):
    venv = tmp_path / "venv"
    _install(venv, [str(REPO / "packages" / "core"), str(REPO / "packages" / "s3")])
    config = {
        "access_key": "testing",
        "secret_key": "testing",
        "bucket_name": s3_bucket,
        "location": "results",
    }
    endpoint = {"AWS_S3_ENDPOINT_URL": s3_proxy.url, "AWS_S3_REGION_NAME": "us-east-1"}
    printed = run_earlier(
        venv,
        tmp_path,
        BACKENDS[0],
        "storages.backends.s3boto3.S3Boto3Storage",
        config,
        endpoint,
        "django_storage_celery_results,django_storage_celery_results_s3",
    )
    assert printed == ["StorageBackend", "S3Adapter", "{'ok':", "[1,", "2]}", "True"]
    assert s3_raw.head_object(
        Bucket=s3_bucket, Key="results/celery-task-meta-c0ffee00-0000-4000-8000-000000000001"
    )


def test_fresh_install_of_the_azure_provider_serves_the_earlier_azure_configuration(
    tmp_path, azure_proxy, azure_container, azure_raw
):
    venv = tmp_path / "venv"
    _install(venv, [str(REPO / "packages" / "core"), str(REPO / "packages" / "azure")])
    config = {
        "connection_string": azurite_connection_string(azure_proxy.url),
        "azure_container": azure_container,
        "location": "results",
    }
    printed = run_earlier(
        venv,
        tmp_path,
        BACKENDS[1],
        "storages.backends.azure_storage.AzureStorage",
        config,
        {},
        "django_storage_celery_results,django_storage_celery_results_azure",
    )
    assert printed == ["StorageBackend", "AzureAdapter", "{'ok':", "[1,", "2]}", "True"]
    stored = "results/celery-task-meta-c0ffee00-0000-4000-8000-000000000001"
    assert list(azure_raw.list_blob_names()) == [stored]
