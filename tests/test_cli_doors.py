"""The command line's two doors as a user runs them: `celery -A app results ...`
(Celery's celery.commands entry point) and `django-admin celery_results ...`
(the management command), each a real subprocess of the test project."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import pytest
from celery import states
from django.core.management import call_command

from support.processes import REPO
from support.stores.s3 import S3_CREDENTIALS

APP = "support.project.celery_app"


def run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    full_env = {
        **os.environ,
        **env,
        "DJANGO_SETTINGS_MODULE": "support.project.settings",
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    return subprocess.run(
        [sys.executable, *args], cwd=REPO, env=full_env, capture_output=True, text=True, timeout=120
    )


@pytest.fixture
def folder_results(make_app, tmp_path):
    """Two results in a folder, and the environment that points the test project at it."""
    config = {"location": str(tmp_path / "results")}
    app = make_app(result_storage="filesystem", result_storage_config=config)
    ids = [str(uuid.uuid4()), str(uuid.uuid4())]
    app.backend.store_result(ids[0], 42, states.SUCCESS)
    app.backend.store_result(ids[1], ValueError("no"), states.FAILURE)
    env = {"TEST_RESULT_STORAGE": "filesystem", "TEST_RESULT_STORAGE_CONFIG": json.dumps(config)}
    return ids, env


def test_celery_door(folder_results):
    ids, env = folder_results
    listed = run("-m", "celery", "-A", APP, "results", "ls", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    assert sorted(json.loads(line)["id"] for line in listed.stdout.splitlines()) == sorted(ids)
    missing = run("-m", "celery", "-A", APP, "results", "show", "../../etc/passwd", env=env)
    assert missing.returncode == 1 and "No result is stored" in missing.stdout


def test_django_door(folder_results):
    _ids, env = folder_results
    counted = run("-m", "django", "celery_results", "--app", f"{APP}:app", "stats", "--json", env=env)
    assert counted.returncode == 0, counted.stderr
    assert json.loads(counted.stdout)["by_state"] == {"SUCCESS": 1, "FAILURE": 1}
    # the test project's package does not import its Celery app: the command says how to find one
    lost = run("-m", "django", "celery_results", "ls", env=env)
    assert lost.returncode == 1 and "--app" in lost.stderr


def test_celery_door_on_s3(s3_store, make_app):
    app = s3_store.app(make_app)
    app.backend.store_result("one", 1, states.SUCCESS)
    env = {"TEST_RESULT_STORAGE": "s3", "TEST_RESULT_STORAGE_CONFIG": json.dumps(s3_store.worker_config())}
    checked = run("-m", "celery", "-A", APP, "results", "check", env=env)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "S3Adapter" in checked.stdout
    for secret in (S3_CREDENTIALS["access_key"], S3_CREDENTIALS["secret_key"]):
        assert secret not in checked.stdout + checked.stderr


def test_call_command(capsys):
    """call_command() runs the same group; a non-zero exit raises SystemExit."""
    call_command("celery_results", "--app", f"{APP}:app", "lifecycle", "--json")
    assert json.loads(capsys.readouterr().out)["native"] is False
    with pytest.raises(SystemExit) as raised:
        call_command("celery_results", "--app", f"{APP}:app", "show", "nothing-here")
    assert raised.value.code == 1
