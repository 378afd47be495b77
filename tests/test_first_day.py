"""A new project made by ``django-admin startproject``: the checks never pass silently.

Without the Celery app imported when Django starts, Django's checks used to
report no issues even for a broken result configuration, and ``check
--deploy`` ran no storage check. They now say that no app was found and what
to import where (W004).
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.core import checks

from django_storage_celery_results.checks import check_result_storage
from support.processes import REPO, stop_process

pytestmark = pytest.mark.e2e

CELERY_MODULE = """\
import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "myproject.settings")

app = Celery("myproject")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
"""

IMPORT_THE_APP = 'from .celery import app as celery_app\n\n__all__ = ("celery_app",)\n'

TYPO = "storages.backends.s3.S3Storag"
NO_APP = "django_storage_celery_results.W004"


def start_project(where: Path, *, celery_module: bool = True, imported: bool = False) -> Path:
    """A project as startproject makes it, with this backend's settings and a typo in the class path."""
    where.mkdir()
    run([sys.executable, "-m", "django", "startproject", "myproject", str(where)], cwd=where.parent)
    package = where / "myproject"
    with (package / "settings.py").open("a") as settings:
        settings.write(
            '\nINSTALLED_APPS += ["django_storage_celery_results"]\n'
            'CELERY_RESULT_BACKEND = "django-storage"\n'
            f"CELERY_RESULT_STORAGE = {TYPO!r}\n"
        )
    if celery_module:
        (package / "celery.py").write_text(CELERY_MODULE)
    if imported:
        (package / "__init__.py").write_text(IMPORT_THE_APP)
    return where


def run(command: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if key != "DJANGO_SETTINGS_MODULE"}
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def manage(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run([sys.executable, "manage.py", *args], cwd=project)


@pytest.mark.parametrize("deploy", [False, True], ids=["check", "check --deploy"])
def test_without_the_import_the_checks_say_what_to_import(tmp_path, deploy):
    project = start_project(tmp_path / "site")
    checked = manage(project, "check", *(["--deploy"] if deploy else []))
    output = checked.stdout + checked.stderr
    assert NO_APP in output, output
    assert "No Celery app was found when Django started" in output
    assert "myproject/celery.py is never imported" in output
    assert "add 'from .celery import app as celery_app' to myproject/__init__.py" in output


def test_without_a_celery_module_the_hint_says_to_create_it(tmp_path):
    project = start_project(tmp_path / "site", celery_module=False)
    output = manage(project, "check").stderr
    assert NO_APP in output, output
    assert "Create the Celery app in myproject/celery.py" in output


def test_with_the_import_the_broken_configuration_is_reported(tmp_path):
    project = start_project(tmp_path / "site", imported=True)
    checked = manage(project, "check")
    assert checked.returncode == 1, checked.stdout + checked.stderr
    assert "django_storage_celery_results.E001" in checked.stderr
    assert "has no attribute 'S3Storag'; did you mean 'storages.backends.s3.S3Storage'?" in checked.stderr
    assert NO_APP not in checked.stderr


def test_an_app_without_result_backend_reading_django_settings(current, settings):
    del settings.CELERY_RESULT_BACKEND
    current(result_backend=None)
    [message] = check_result_storage()
    assert message.id == NO_APP
    assert message.level == checks.WARNING
    assert "has no result backend" in message.msg
    assert message.hint == "Set CELERY_RESULT_BACKEND = 'django-storage'."


def test_an_app_that_does_not_read_the_celery_settings(current, settings):
    settings.CELERY_RESULT_BACKEND = "django-storage"
    current(result_backend=None)
    [message] = check_result_storage()
    assert message.id == NO_APP
    assert "namespace='CELERY'" in message.hint


def readme_install_blocks() -> list[tuple[str, str]]:
    """The fenced blocks (language, text) of the README's "Install and configure" section."""
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Install and configure", 1)[1].split("\n### ", 1)[0]
    return re.findall(r"```(\w+)\n(.*?)```", section, flags=re.DOTALL)


def as_commands(block: str, python: str) -> list[list[str]]:
    commands = []
    for line in block.splitlines():
        command = shlex.split(line, comments=True)
        if command[0] == "python":
            command[0] = python
        elif command[0] == "celery":
            command[:1] = [python, "-m", "celery"]
        commands.append(command)
    return commands


def test_the_readme_install_section_followed_literally(tmp_path, redis_url):
    """startproject, then every block of the README's install section as it stands."""
    blocks = readme_install_blocks()
    [install, *_] = [text for language, text in blocks if language == "bash" and "pip install" in text]
    assert '"celery[redis]"' in install  # the broker's own extra (installed here by the test env)
    project = tmp_path / "site"
    project.mkdir()
    run([sys.executable, "-m", "django", "startproject", "myproject", str(project)], cwd=tmp_path)
    files = [text for language, text in blocks if language == "python" and text.startswith("# myproject/")]
    assert len(files) == 3, "settings.py, celery.py and __init__.py"
    for text in files:
        path = project / text.split()[1].rstrip(":")
        if path.name == "settings.py":  # "add": the block goes below startproject's settings
            text = text.replace("INSTALLED_APPS = [...,", "INSTALLED_APPS += [")
            text = text.replace("redis://localhost:6379/0", redis_url)
            path.write_text(path.read_text() + "\n" + text)
        else:
            path.write_text(text)
    [steps] = [text for language, text in blocks if language == "bash" and "manage.py check" in text]
    check, worker_command, task = as_commands(steps, sys.executable)

    checked = run(check, cwd=project)
    assert checked.returncode == 0 and "System check identified no issues" in checked.stdout, checked

    env = {key: value for key, value in os.environ.items() if key != "DJANGO_SETTINGS_MODULE"}
    log = tmp_path / "worker.log"
    with log.open("wb") as output:
        worker = subprocess.Popen(
            worker_command, cwd=project, env=env, stdout=output, stderr=subprocess.STDOUT
        )
        try:
            deadline = time.monotonic() + 60
            while b"ready." not in log.read_bytes():
                assert worker.poll() is None and time.monotonic() < deadline, log.read_text()
                time.sleep(0.2)
            answered = run(task, cwd=project)
        finally:
            stop_process(worker)
    assert answered.stdout.strip().splitlines()[-1] == "5", (
        answered.stdout + answered.stderr + log.read_text()
    )
    assert [path.name[:16] for path in (project / "celery-results").iterdir()] == ["celery-task-meta"]
