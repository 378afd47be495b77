"""The command line (cli.py) on every kind of storage: the folder, the generic
adapter, and each cloud emulator behind the counting proxy.

Each subcommand's person output and --json are checked on each store, with
exact request counts for `ls --limit` and `show` on the object stores; the
Celery door (`celery -A app results ...`) and the Django door
(`django-admin celery_results ...`) run as real subprocesses in
test_cli_doors.py.
"""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from celery import states
from celery.app.task import Context
from click.testing import CliRunner

from django_storage_celery_results.cli import results
from support.faults import Fault
from support.stores.azure import AZURITE_KEY
from support.stores.gcs import bucket_answer, results_rule
from support.stores.s3 import S3_CREDENTIALS

OBJECT_STORES = ("s3", "gcs", "azure")
STORES = ("filesystem", "generic", *OBJECT_STORES)
#: Secrets the stores are configured with: never in any output.
SECRETS = (AZURITE_KEY, S3_CREDENTIALS["access_key"], S3_CREDENTIALS["secret_key"])


@dataclass
class Target:
    """One store under test: the app over it and how to see what it holds."""

    preset: str
    app: Any
    names: Any  # () -> set of every object name or key in the location's bucket or folder
    store: Any = None  # the StoreUnderTest of an object store
    outputs: list[str] = field(default_factory=list)

    def run(self, *args: str, input: str | None = None) -> Any:  # noqa: A002
        outcome = CliRunner().invoke(
            results, list(args), obj=SimpleNamespace(app=self.app), input=input, catch_exceptions=False
        )
        self.outputs.append(outcome.output)
        return outcome

    def requests(self) -> list[str]:
        return self.store.calls(self.store.proxy.requests)

    def reset(self) -> None:
        self.store.proxy.reset()


@pytest.fixture(params=STORES)
def target(request, make_app, tmp_path: Path, fresh_store) -> Any:
    preset = request.param
    if preset in OBJECT_STORES:
        store = fresh_store(preset)
        app = store.app(make_app, result_extended=True)
        found = Target(preset, app, store.names, store)
        store.plant("celery-results/notes.txt", b"not a result")  # in the location, not ours
        store.plant("elsewhere/celery-task-meta-keep", b"{}")  # outside the location
    else:
        folder = tmp_path / "results"
        folder.mkdir()
        storage = "filesystem" if preset == "filesystem" else "support.storages.ThirdPartyFolderStorage"
        app = make_app(
            result_storage=storage, result_storage_config={"location": str(folder)}, result_extended=True
        )
        (folder / "notes.txt").write_bytes(b"not a result")
        found = Target(preset, app, lambda: set(os.listdir(folder)))
    yield found
    for output in found.outputs:
        for secret in SECRETS:
            assert secret not in output


def seed(app: Any) -> dict[str, list[str]]:
    """Three successes of tests.add, two failures of tests.fail, one started task and a group."""
    backend = app.backend
    made: dict[str, list[str]] = {"add": [], "fail": [], "started": [], "group": []}
    for number in range(3):
        task_id = str(uuid.uuid4())
        backend.store_result(task_id, number, states.SUCCESS, request=_request("tests.add", "w1@host"))
        made["add"].append(task_id)
    for _ in range(2):
        task_id = str(uuid.uuid4())
        backend.store_result(
            task_id,
            ValueError("boom"),
            states.FAILURE,
            traceback="Traceback (most recent call last):\nValueError: boom",
            request=_request("tests.fail", "w2@host"),
        )
        made["fail"].append(task_id)
    started = str(uuid.uuid4())
    backend.store_result(started, {"pid": 1}, states.STARTED, request=_request("tests.sleep", "w1@host"))
    made["started"].append(started)
    group = app.GroupResult(str(uuid.uuid4()), [app.AsyncResult(made["add"][0])])
    group.save(backend=backend)
    made["group"].append(group.id)
    return made


def _request(task: str, worker: str) -> Context:
    return Context(
        id=None, task=task, hostname=worker, args=[1, 2], kwargs={"x": 1}, retries=0, delivery_info={}
    )


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


# -- ls ------------------------------------------------------------------------------


def test_ls(target):
    made = seed(target.app)
    person = target.run("ls")
    assert person.exit_code == 0, person.output
    for task_id in [*made["add"], *made["fail"], *made["started"]]:
        assert task_id in person.output
    assert "tests.fail" in person.output and "w2@host" in person.output
    assert "not a result" not in person.output  # notes.txt is not one of ours

    rows = json_lines(target.run("ls", "--json").output)
    assert sorted(row["state"] for row in rows) == ["FAILURE", "FAILURE", "STARTED", *["SUCCESS"] * 3]
    assert {row["task"] for row in rows} == {"tests.add", "tests.fail", "tests.sleep"}
    assert all(row["size"] > 0 for row in rows)

    failed = json_lines(target.run("ls", "--json", "--state", "failure").output)
    assert sorted(row["id"] for row in failed) == sorted(made["fail"])
    by_task = json_lines(target.run("ls", "--json", "--task", "tests.a*").output)
    assert sorted(row["id"] for row in by_task) == sorted(made["add"])
    groups = json_lines(target.run("ls", "--json", "--kind", "group").output)
    assert [row["id"] for row in groups] == made["group"]
    assert json_lines(target.run("ls", "--json", "--older-than", "1h").output) == []
    assert len(json_lines(target.run("ls", "--json", "--newer-than", "1h").output)) == 6
    assert json_lines(target.run("ls", "--json", "--older-than", "2000-01-01T00:00").output) == []
    assert len(json_lines(target.run("ls", "--json", "--newer-than", "2000-01-01T00:00Z").output)) == 6


@pytest.mark.parametrize("preset", OBJECT_STORES)
def test_ls_limit_reads_only_what_it_shows(preset, fresh_store, make_app):
    """One listing page and one read per result shown, nothing more."""
    store = fresh_store(preset)
    target = Target(preset, store.app(make_app), store.names, store)
    seed(target.app)
    target.reset()
    rows = json_lines(target.run("ls", "--limit", "2", "--json").output)
    assert len(rows) == 2
    assert sorted(target.requests()) == ["list", "read", "read"]
    target.reset()
    assert target.run("show", rows[0]["id"]).exit_code == 0
    assert target.requests() == ["read"]


# -- show ----------------------------------------------------------------------------


def test_show(target):
    made = seed(target.app)
    failed = made["fail"][0]
    person = target.run("show", failed)
    assert person.exit_code == 0, person.output
    for text in ("FAILURE", "tests.fail", "w2@host", "ValueError: boom", '{"x": 1}', "Stored at"):
        assert text in person.output
    document = json.loads(target.run("show", failed, "--json").output)
    assert document["meta"]["status"] == "FAILURE"
    assert document["meta"]["kwargs"] == {"x": 1}
    assert f"celery-task-meta-{failed}" in document["stored_at"]
    raw = target.run("show", made["add"][0], "--raw")
    assert json.loads(raw.stdout_bytes)["status"] == "SUCCESS"
    group = target.run("show", "--group", made["group"][0], "--json")
    assert json.loads(group.output)["meta"]["result"]


@pytest.mark.parametrize("missing", ["no-such-task", "../../etc/passwd", "../celery-results/notes.txt"])
def test_show_nothing_stored(target, missing):
    """A hostile id is just an id with nothing stored: nothing outside the location is read."""
    if target.store is not None:
        target.reset()
    outcome = target.run("show", missing)
    assert outcome.exit_code == 1
    assert f"No result is stored for task {missing!r}" in outcome.output
    assert "root:" not in outcome.output and "not a result" not in outcome.output
    document = json.loads(target.run("show", missing, "--json").output)
    assert document["meta"] is None
    assert target.run("show", missing, "--raw").stdout_bytes == b""
    if target.store is not None:  # every request named a key under the location, of a task result
        keys = [key for request in target.store.proxy.requests for key in target.store.keys(request)]
        assert len(keys) == 3 and all(key.startswith("celery-results/celery-task-meta-") for key in keys)


# -- stats ---------------------------------------------------------------------------


def test_stats(target):
    seed(target.app)
    document = json.loads(target.run("stats", "--json").output)
    assert document["tasks"] == 6 and document["groups"] == 1 and document["chord_bookkeeping"] == 0
    assert document["by_state"] == {"SUCCESS": 3, "FAILURE": 2, "STARTED": 1}
    assert document["by_task"] == {"tests.add": 3, "tests.fail": 2, "tests.sleep": 1}
    assert document["bytes"] > 0 and document["oldest"] <= document["newest"]
    person = target.run("stats")
    assert person.exit_code == 0
    assert "tests.add" in person.output and "FAILURE" in person.output


# -- purge ---------------------------------------------------------------------------


def test_purge_deletes_exactly_the_selection(target):
    made = seed(target.app)
    before = target.names()
    dry = target.run("purge", "--state", "FAILURE", "--dry-run")
    assert dry.exit_code == 0
    assert "2 task results in state FAILURE would be deleted" in dry.output
    assert target.names() == before
    assert len(json_lines(target.run("purge", "--state", "FAILURE", "--dry-run", "--json").output)) == 2

    refused = target.run("purge", "--state", "FAILURE", input="n\n")
    assert refused.exit_code == 1 and target.names() == before

    done = target.run("purge", "--state", "FAILURE", "--yes", "--json")
    assert done.exit_code == 0
    assert json.loads(done.output)["deleted"] == 2
    gone = {name for name in before if any(name.endswith(f"celery-task-meta-{i}") for i in made["fail"])}
    assert len(gone) == 2 and target.names() == before - gone

    by_id = target.run("purge", made["add"][0], "no-such-task", "--yes")
    assert "Deleted 1 " in by_id.output
    assert target.run("show", made["add"][0]).exit_code == 1


def test_purge_by_age_keeps_what_is_not_ours(target):
    seed(target.app)
    assert target.run("purge", "--older-than", "1h", "--yes").output.startswith("Deleted 0 ")
    everything = target.run("purge", "--newer-than", "1h", "--yes")
    assert "Deleted 6 task results" in everything.output
    left = target.names()
    assert any(name.endswith("notes.txt") for name in left)
    assert any("celery-taskset-meta-" in name for name in left)  # groups are another --kind
    assert not any("celery-task-meta-" in name for name in left if not name.startswith("elsewhere/"))


def test_purge_needs_a_criterion(target):
    outcome = target.run("purge", "--yes")
    assert outcome.exit_code == 2
    assert "name what to delete" in outcome.output


def test_interrupted_purge_finishes_on_the_next_run(s3_store, make_app):
    """A store error in the second delete batch stops the purge with what was
    done reported; the next run deletes the rest."""
    target = Target("s3", s3_store.app(make_app), s3_store.names, s3_store)
    seed(target.app)
    bulk_deletes = []

    def second_bulk_delete(request) -> bool:
        if request.method == "POST" and "delete" in request.query:
            bulk_deletes.append(request)
            return len(bulk_deletes) >= 2
        return False

    s3_store.proxy.inject(Fault(403, b"", matches=second_bulk_delete, times=100))
    first = target.run("purge", "--newer-than", "1h", "--batch-size", "2", "--yes", "--json")
    assert first.exit_code == 1
    report = json.loads(first.output)
    assert report["deleted"] == 2 and "stopped by" in report["stopped"]
    s3_store.proxy.reset()
    second = target.run("purge", "--newer-than", "1h", "--batch-size", "2", "--yes")
    assert "Deleted 4 task results" in second.output
    assert target.run("ls", "--json").output == ""


def test_ctrl_c_reports_what_was_deleted(make_app, tmp_path, monkeypatch):
    app = make_app(result_storage="filesystem", result_storage_config={"location": str(tmp_path)})
    target = Target("filesystem", app, lambda: set(os.listdir(tmp_path)))
    seed(app)
    calls = []
    real = app.backend.delete_names

    def delete_then_interrupt(names):
        calls.append(list(names))
        if len(calls) == 2:
            raise KeyboardInterrupt
        real(names)

    monkeypatch.setattr(app.backend, "delete_names", delete_then_interrupt)
    outcome = target.run("purge", "--newer-than", "1d", "--batch-size", "4", "--yes")
    assert outcome.exit_code == 1
    assert "Purge interrupted; deleted 4 task results" in outcome.output
    monkeypatch.setattr(app.backend, "delete_names", real)
    assert "Deleted 2 task results" in target.run("purge", "--newer-than", "1d", "--yes").output


def test_age_without_modified_times_comes_from_date_done(make_app, tmp_path):
    """A storage that cannot tell modified times: --older-than reads date_done."""
    app = make_app(
        result_storage="support.storages.MinimalStorage", result_storage_config={"location": str(tmp_path)}
    )
    target = Target("minimal", app, lambda: set(os.listdir(tmp_path)))
    seed(app)
    assert target.run("purge", "--older-than", "1h", "--yes").output.startswith("Deleted 0 ")
    assert "Deleted 5 task results" in target.run("purge", "--newer-than", "1h", "--yes").output
    # the STARTED result has no date_done: its age is unknown, it stays
    assert len(json_lines(target.run("ls", "--json").output)) == 1


# -- check and lifecycle --------------------------------------------------------------


def test_check(target):
    outcome = target.run("check")
    assert outcome.exit_code == 0, outcome.output
    for text in (
        "Storage:",
        "Adapter:",
        "Settings:",
        "Key layout:",
        "celery-task-meta-<task id>",
        "Findings:",
    ):
        assert text in outcome.output
    document = json.loads(target.run("check", "--json").output)
    assert document["ok"] is True
    expected = {"filesystem": "FileSystemAdapter", "generic": "GenericAdapter"}
    assert document["adapter"] == expected.get(target.preset, document["adapter"])
    if target.preset in OBJECT_STORES:
        assert document["provider"].startswith(f"django-storage-celery-results-{target.preset} ")


def test_check_reports_errors(make_app, fresh_store):
    store = fresh_store("s3")
    app = store.app(make_app, config={**store.config, "bucket_name": "no-such-bucket"})
    target = Target("s3", app, store.names, store)
    outcome = target.run("check", "--json")
    assert outcome.exit_code == 1
    document = json.loads(outcome.output)
    assert document["ok"] is False
    assert [f["id"] for f in document["findings"]] == ["django_storage_celery_results_s3.E010"]
    for secret in SECRETS:
        assert secret not in outcome.output


def test_lifecycle(target):
    first = target.run("lifecycle")
    document = json.loads(target.run("lifecycle", "--json").output)
    if target.preset in ("filesystem", "generic"):
        assert first.exit_code == 0 and "cleanup()" in first.output
        assert document["native"] is False
    elif target.preset == "azure":
        assert first.exit_code == 0
        assert "az storage account management-policy create" in first.output
        rule = document["policy"]["rules"][0]
        assert rule["definition"]["actions"]["baseBlob"]["delete"]["daysAfterModificationGreaterThan"] == 1
    else:
        assert first.exit_code == 1 and "run with --apply" in first.output
        assert document["rule"] is None and document["matches"] is False
        applied = json.loads(target.run("lifecycle", "--apply", "--json").output)
        assert applied["applied"] == "created"
        if target.preset == "gcs":  # fake-gcs-server keeps no lifecycle rules: answer as GCS would
            target.store.proxy.inject(bucket_answer(target.store.bucket, [results_rule(1)])).times = 10
        again = target.run("lifecycle")
        assert again.exit_code == 0 and "as result_expires asks" in again.output


def test_usage_errors():
    runner = CliRunner()
    bad_age = runner.invoke(results, ["ls", "--older-than", "yesterday"], obj=SimpleNamespace(app=None))
    assert bad_age.exit_code == 2 and "neither an age" in bad_age.output
    bad_state = runner.invoke(results, ["ls", "--state", "DONE"], obj=SimpleNamespace(app=None))
    assert bad_state.exit_code == 2
    for command in ("check", "ls", "show", "stats", "purge", "lifecycle"):
        helped = runner.invoke(results, [command, "--help"])
        assert helped.exit_code == 0 and "--json" in helped.output


def test_not_our_backend(make_app):
    app = make_app(result_backend="cache+memory://")
    outcome = CliRunner().invoke(results, ["ls"], obj=SimpleNamespace(app=app))
    assert outcome.exit_code == 1
    assert "not django-storage" in outcome.output
