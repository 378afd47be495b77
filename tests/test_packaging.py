"""The packages install on their own and work under the earlier configuration.

Builds both packages from their folders into a fresh virtual environment
(no workspace, no editable installs) and runs the earlier package's exact
settings there: this proves the metadata, the entry points and py.typed.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.e2e

EARLIER_CONFIGURATION = textwrap.dedent(
    """
    import sys
    import django
    from django.conf import settings

    settings.configure(
        INSTALLED_APPS=["django_storage_celery_results"],
        CELERY_RESULT_BACKEND=sys.argv[2],
        CELERY_RESULT_STORAGE="django.core.files.storage.FileSystemStorage",
        CELERY_RESULT_STORAGE_CONFIG={"location": sys.argv[1]},
    )
    django.setup()
    from celery import Celery
    from importlib.resources import files

    app = Celery("earlier")
    app.config_from_object("django.conf:settings", namespace="CELERY")
    app.backend.mark_as_done("c0ffee00-0000-4000-8000-000000000001", {"ok": [1, 2]})
    app.backend._cache.clear()
    meta = app.backend.get_task_meta("c0ffee00-0000-4000-8000-000000000001")
    typed = all(files(name).joinpath("py.typed").is_file() for name in (
        "django_storage_celery_results", "django_storage_celery_results_filesystem"))
    print(type(app.backend).__name__, type(app.backend.adapter).__name__, meta["result"], typed)
    """
)


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


def test_fresh_install_works_with_the_earlier_configuration(tmp_path):
    venv = tmp_path / "venv"
    _install(venv, [str(REPO / "packages" / "core"), str(REPO / "packages" / "filesystem")])
    script = tmp_path / "earlier.py"
    script.write_text(EARLIER_CONFIGURATION)
    for backend in ("django_storage_celery_results.backends.StorageBackend", "django-storage"):
        location = tmp_path / backend
        run = subprocess.run(
            [str(venv / "bin" / "python"), str(script), str(location), backend],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            timeout=120,
        )
        assert run.returncode == 0, run.stderr
        assert run.stdout.split() == ["StorageBackend", "FileSystemAdapter", "{'ok':", "[1,", "2]}", "True"]
        assert (location / "celery-task-meta-c0ffee00-0000-4000-8000-000000000001").is_file()
