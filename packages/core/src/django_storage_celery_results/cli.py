"""The command line: one click group behind two doors.

* Celery: ``celery -A proj results SUBCOMMAND`` (the ``celery.commands``
  entry point; Celery's own ``celery result`` is another command);
* Django: ``python manage.py celery_results SUBCOMMAND`` (the management
  command runs ``manage``, the same subcommands with the project's app).

Every subcommand reaches the Celery app as ``ctx.obj.app`` (Celery's
CLIContext, or ``ProjectApp`` on the Django side), speaks to a person by
default and with ``--json`` prints one JSON document (JSON lines for
listings). Exit codes: 0 fine, 1 findings or errors (and Ctrl-C), 2 usage.
Progress goes to stderr, only when it is a terminal and never under --json.
"""

from __future__ import annotations

import contextlib
import datetime
import functools
import itertools
import json
import re
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar, cast

import click
from celery import states

from . import checks as system_checks
from .backends import StorageBackend
from .exceptions import ImproperlyConfigured
from .inventory import CHORD, DELETE_BATCH, GROUP, KINDS, SUMMARY_FIELDS, TASK, Entry, Inventory, Result
from .redact import MASK, SECRET_NAME
from .selection import Selection, select, select_for_purge

T = TypeVar("T")

#: How a person writes an age: 30m, 12h, 2d, 1w (or 90s).
DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])", re.IGNORECASE)
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
STATES = sorted(states.ALL_STATES)


# -- values people type ----------------------------------------------------------


class Moment(click.ParamType):
    """An age (``30m``, ``12h``, ``2d``, ``1w``) or an ISO 8601 date-time, as
    an aware date-time; a date-time without an offset is UTC."""

    name = "AGE|DATETIME"

    def convert(self, value: Any, param: Any, ctx: Any) -> datetime.datetime:
        if isinstance(value, datetime.datetime):
            return value
        text = str(value).strip()
        found = DURATION.fullmatch(text)
        now = datetime.datetime.now(datetime.timezone.utc)
        if found:
            return now - datetime.timedelta(seconds=float(found[1]) * UNITS[found[2].lower()])
        try:
            moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            self.fail(f"{text!r} is neither an age (30m, 12h, 2d, 1w) nor an ISO 8601 date-time", param, ctx)
        return moment if moment.tzinfo else moment.replace(tzinfo=datetime.timezone.utc)


def selection_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """--kind, --state, --task, --older-than and --newer-than, as one Selection argument."""

    @click.option(
        "--kind",
        type=click.Choice(KINDS),
        default=TASK,
        show_default=True,
        help="Task results, group results, or the bookkeeping of chords being counted.",
    )
    @click.option(
        "--state",
        "states_",
        multiple=True,
        type=click.Choice(STATES, case_sensitive=False),
        help="Only results in this state (repeat for several).",
    )
    @click.option("--task", "tasks", multiple=True, help="Only results of this task name (glob; repeat).")
    @click.option(
        "--older-than", type=Moment(), help="Written before: an age (30m, 12h, 2d, 1w) or a date-time."
    )
    @click.option("--newer-than", type=Moment(), help="Written after: an age or a date-time.")
    @functools.wraps(command)
    def wrapper(
        *args: Any,
        kind: str,
        states_: tuple[str, ...],
        tasks: tuple[str, ...],
        older_than: datetime.datetime | None,
        newer_than: datetime.datetime | None,
        **kwargs: Any,
    ) -> Any:
        if kind != TASK and (states_ or tasks):
            raise click.UsageError(f"--state and --task filter task results, not --kind {kind}")
        found = Selection(kind, frozenset(s.upper() for s in states_), tasks, older_than, newer_than)
        return command(*args, selection=found, **kwargs)

    return wrapper


json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON (JSON lines for listings).")


# -- the context: the app, its backend, and how output goes ------------------------


class Session:
    """One command's backend, inventory and output."""

    def __init__(self, app: Any, as_json: bool) -> None:
        self.app = app
        self.as_json = as_json
        backend = app.backend
        if not isinstance(backend, StorageBackend):
            raise click.ClickException(
                f"The Celery app {app.main!r} stores results with {type(backend).__name__} "
                f"(result_backend = {app.conf.result_backend!r}), not django-storage."
            )
        self.backend = backend
        self.adapter = backend.adapter
        self.inventory = Inventory(backend)

    def say(self, text: str = "") -> None:
        if not self.as_json:
            click.echo(self.adapter.redact(text))

    def emit(self, document: Any) -> None:
        """One JSON document (or one line of a listing)."""
        click.echo(self.adapter.redact(json.dumps(document, default=_jsonable, sort_keys=False)))

    def progress(
        self, items: Iterable[T], label: str, length: int | None = None
    ) -> contextlib.AbstractContextManager[Iterable[T]]:
        """A progress bar on stderr when it is a terminal and the output is for a person."""
        if self.as_json or not sys.stderr.isatty():
            return contextlib.nullcontext(items)
        started = time.monotonic()
        bar: Any = click.progressbar(items, length=length, label=label, file=sys.stderr, show_pos=True)

        def rate(_item: Any) -> str:
            return f"{bar.pos / max(time.monotonic() - started, 1e-6):.0f}/s"

        bar.item_show_func = rate
        return cast("contextlib.AbstractContextManager[Iterable[T]]", bar)


def run(command: Callable[..., int | None]) -> Callable[..., None]:
    """Run a subcommand with its Session: store and settings errors exit 1,
    redacted; the command's own return value is the exit code."""

    @click.pass_context
    @functools.wraps(command)
    def wrapper(ctx: click.Context, *args: Any, as_json: bool = False, **kwargs: Any) -> None:
        session: Session | None = None
        try:
            session = Session(ctx.obj.app, as_json)
            code = command(session, *args, **kwargs)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except ImproperlyConfigured as exc:
            raise click.ClickException(_redacted(session, str(exc))) from None
        except Exception as exc:
            raise click.ClickException(_redacted(session, f"{type(exc).__name__}: {exc}")) from None
        ctx.exit(code or 0)

    return wrapper


def _redacted(session: Session | None, text: str) -> str:
    return session.adapter.redact(text) if session is not None else text


# -- the group ---------------------------------------------------------------------


@click.group(name="results", context_settings={"help_option_names": ["-h", "--help"]})
def results() -> None:
    """Look at, count, check and purge the Celery results kept in a Django Storage.

    Exit codes: 0 fine, 1 findings or errors (or interrupted), 2 usage.
    """


# -- check -------------------------------------------------------------------------


@results.command()
@json_option
@run
def check(session: Session) -> int:
    """Which storage, adapter and provider serve results, the effective settings
    (secrets redacted), the key layout, then the provider's connectivity check."""
    report = check_report(session)
    failed = any(finding["level"] in ("error", "critical") for finding in report["findings"])
    if session.as_json:
        session.emit({**report, "ok": not failed})
        return 1 if failed else 0
    session.say(f"Storage:   {report['storage']} ({report['storage_class']})")
    session.say(f"Adapter:   {report['adapter']}")
    provider = report["provider"]
    session.say(f"Provider:  {provider or 'none (the generic adapter serves any Django Storage)'}")
    session.say(f"Source:    {report['source']}")
    session.say("Settings:")
    for name, value in report["settings"].items():
        session.say(f"  {name} = {value!r}")
    session.say("Key layout:")
    for kind, example in report["layout"].items():
        session.say(f"  {kind:<8} {example}")
    session.say("Findings:")
    if not report["findings"]:
        session.say("  none: the storage answered every check")
    for finding in report["findings"]:
        session.say(f"  {finding['level'].upper()} {finding['id'] or ''}: {finding['message']}")
        if finding["hint"]:
            session.say(f"      hint: {finding['hint']}")
    return 1 if failed else 0


def check_report(session: Session) -> dict[str, Any]:
    backend, adapter = session.backend, session.adapter
    config, conf = backend.storage_config, session.app.conf
    provider = config.provider
    findings = [
        *system_checks.configuration_findings(conf, config, adapter),
        *system_checks.connectivity_findings(conf, config, adapter),
    ]
    messages = [_finding(message) for message in findings]
    if provider is None or provider.connectivity is None:
        messages.extend(_listing_finding(session))
    return {
        "storage": adapter.describe(),
        "storage_class": config.class_path,
        "adapter": type(adapter).__name__,
        "provider": f"{provider.distribution} {_version(provider.distribution)}" if provider else None,
        "source": adapter.redact(config.source),
        "settings": effective_settings(session),
        "layout": {
            TASK: f"{backend.task_keyprefix}<task id>",
            GROUP: f"{backend.group_keyprefix}<group id>",
            CHORD: f"{backend.chord_keyprefix}<group id>...",
            "encoded": "an id outside [a-z0-9._-] is stored as <prefix>_<base32 of its UTF-8 bytes>",
            "where": adapter.describe(),
        },
        "findings": messages,
    }


def effective_settings(session: Session) -> dict[str, Any]:
    """The settings the backend runs with; every secret shown as ***."""
    conf, backend = session.app.conf, session.backend
    shown: dict[str, Any] = {
        "result_backend": conf.get("result_backend"),
        "result_storage": _plain(conf.get("result_storage")),
        "result_storage_adapter": conf.get("result_storage_adapter") or "auto",
        "result_serializer": conf.get("result_serializer"),
        "result_compression": backend.compression,
        "result_expires": system_checks.expires_seconds(conf),
        "result_extended": bool(conf.get("result_extended")),
        "result_backend_always_retry": bool(conf.get("result_backend_always_retry")),
        "result_storage_concurrency": backend.concurrency,
    }
    options = dict(backend.storage_config.options)
    provider = backend.storage_config.provider
    storage = session.adapter.storage
    for row in provider.settings_map if provider else ():
        value = getattr(storage, row.argument, None)
        if row.argument not in options and value not in (None, "", {}, []):
            options[row.argument] = value  # from the Django setting, or the storage's default
    for name, value in sorted(options.items()):
        shown[f"storage.{name}"] = _masked(name, value)
    return {name: _redact_value(session, value) for name, value in shown.items()}


def _masked(name: str, value: Any) -> Any:
    if value is None or value == "":
        return value
    if SECRET_NAME.search(name) and not isinstance(value, (bool, int, float)):
        return MASK
    if isinstance(value, dict):
        return {key: _masked(str(key), item) for key, item in value.items()}
    if isinstance(value, (str, int, float, bool, list, tuple)):
        return value
    return f"<{type(value).__name__}>"


def _redact_value(session: Session, value: Any) -> Any:
    if isinstance(value, str):
        return session.adapter.redact(value)
    if isinstance(value, dict):
        return {key: _redact_value(session, item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_redact_value(session, item) for item in value]
    return value


def _plain(value: Any) -> Any:
    return f"{value.__module__}.{value.__qualname__}" if isinstance(value, type) else value


def _finding(message: Any) -> dict[str, Any]:
    levels = {10: "debug", 20: "info", 30: "warning", 40: "error", 50: "critical"}
    return {
        "id": message.id,
        "level": levels.get(message.level, str(message.level)),
        "message": message.msg,
        "hint": message.hint,
    }


def _listing_finding(session: Session) -> list[dict[str, Any]]:
    """Storages without a provider probe: one listing proves the location answers."""
    try:
        next(iter(session.adapter.list()), None)
    except Exception as exc:
        return [
            {
                "id": None,
                "level": "error",
                "message": session.adapter.redact(f"listing {session.adapter.describe()} failed: {exc}"),
                "hint": "Check the storage's settings and that its location exists.",
            }
        ]
    return []


def _version(distribution: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(distribution)
    except PackageNotFoundError:
        return "(version unknown)"


# -- ls ----------------------------------------------------------------------------


@results.command(name="ls")
@selection_options
@click.option("--limit", type=click.IntRange(min=1), help="Stop after this many results.")
@json_option
@run
def list_results(session: Session, selection: Selection, limit: int | None) -> int:
    """List stored results: id, state, task name, worker, date done, size.

    Results come in the storage's listing order. Only what a filter needs is
    read, in parallel and bounded, and the listing stops at --limit."""
    shown = 0
    try:
        with session.progress(select(session.inventory, selection, limit), "Listing") as rows:
            for result in itertools_limit(rows, limit):
                if shown == 0:
                    session.say(HEADER[TASK] if selection.kind == TASK else HEADER[GROUP])
                shown += 1
                if session.as_json:
                    session.emit(result_line(result))
                else:
                    session.say(result_row(result))
    except KeyboardInterrupt:
        click.echo(f"Interrupted after {shown} results.", err=True)
        return 1
    if not session.as_json and shown == 0:
        session.say(f"No {selection.describe()} in {session.adapter.describe()}.")
    return 0


def itertools_limit(items: Iterable[T], limit: int | None) -> Iterator[T]:
    return iter(items) if limit is None else itertools.islice(items, limit)


def result_line(result: Result) -> dict[str, Any]:
    return {
        "id": result.id,
        "kind": result.entry.kind,
        "state": result.state,
        "task": result.task_name,
        "worker": result.worker,
        "date_done": _iso(result.date_done),
        "modified": _iso(result.entry.modified),
        "size": result.size,
        "name": result.entry.name,
        **({"problem": result.problem} if result.problem else {}),
    }


HEADER = {
    TASK: f"{'ID':<36}  {'STATE':<9} {'TASK':<32} {'WORKER':<24} {'DATE DONE (UTC)':<20} {'SIZE':>9}",
    GROUP: f"{'ID':<40} {'MODIFIED (UTC)':<20} {'SIZE':>9}",
}


def result_row(result: Result) -> str:
    if result.entry.kind != TASK:
        modified = _short_time(result.entry.modified)
        return f"{result.id or result.entry.name:<40} {modified:<20} {_bytes(result.size):>9}"
    return (
        f"{result.id or result.entry.name:<36}  {result.state or '':<9} {_cut(result.task_name, 32):<32} "
        f"{_cut(result.worker, 24):<24} {_short_time(result.date_done):<20} {_bytes(result.size):>9}"
        + (f"  ({result.problem})" if result.problem else "")
    )


# -- show --------------------------------------------------------------------------


@results.command()
@click.argument("task_id")
@click.option("--group", is_flag=True, help="The id is a group's (GroupResult.save()).")
@click.option("--raw", is_flag=True, help="Write the stored bytes as they are to stdout.")
@json_option
@run
def show(session: Session, task_id: str, group: bool, raw: bool) -> int:
    """The stored result of a task: state, result, traceback, extended fields
    (args, kwargs, name, worker, retries, children) and where it is stored."""
    inventory = session.inventory
    entry = inventory.task_entry(task_id, group=group)
    what = "group" if group else "task"
    if raw:
        data = inventory.raw(entry)
        if data is None:
            click.echo(f"No result is stored for {what} {task_id!r}.", err=True)
            return 1
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return 0
    result = inventory.read_one(entry)
    if result is None:
        return _nothing_stored(session, what, task_id, entry)
    where = inventory.where(entry)
    if session.as_json:
        session.emit(
            {
                "id": task_id,
                "kind": entry.kind,
                "stored_at": where,
                "size": result.size,
                "problem": result.problem,
                "meta": result.meta,
            }
        )
        return 1 if result.problem else 0
    session.say(f"{what.capitalize():<11}{task_id}")
    session.say(f"{'Stored at':<11}{where} ({_bytes(result.size)})")
    if result.problem:
        session.say(f"This object is not a readable {what} result: {result.problem}.")
        return 1
    meta = dict(result.meta or {})
    for key, label in (*SUMMARY_FIELDS, ("parent_id", "Parent"), ("group_id", "Group")):
        if meta.get(key) is not None:
            session.say(f"{label:<11}{meta.pop(key)}")
        else:
            meta.pop(key, None)
    for key in ("args", "kwargs", "children"):
        value = meta.pop(key, None)
        if value is not None:
            session.say(f"{key.capitalize():<11}{_compact(value)}")
    traceback = meta.pop("traceback", None)
    meta.pop("task_id", None)
    session.say("Result:")
    session.say(_indent(_pretty(meta.pop("result", None))))
    if traceback:
        session.say("Traceback:")
        session.say(_indent(str(traceback).rstrip()))
    for key, value in meta.items():
        session.say(f"{key}: {_compact(value)}")
    return 0


def _nothing_stored(session: Session, what: str, ident: str, entry: Entry) -> int:
    where = session.inventory.where(entry)
    if session.as_json:
        session.emit({"id": ident, "kind": entry.kind, "stored_at": where, "meta": None})
    else:
        session.say(f"No result is stored for {what} {ident!r} (looked at {where}).")
    return 1


# -- stats -------------------------------------------------------------------------


@results.command()
@json_option
@run
def stats(session: Session) -> int:
    """Counts by state and task name, total bytes, oldest and newest, in one pass."""
    tally = Tally()
    interrupted = False
    try:
        with session.progress(session.inventory.entries(KINDS), "Counting") as listed:

            def task_entries() -> Iterator[Entry]:
                for entry in listed:
                    if entry.kind == TASK:
                        yield entry  # read and counted by its content
                    else:
                        tally.add_entry(entry)  # the listing says all there is to count

            tally.add_results(session.inventory.read(task_entries()))
    except KeyboardInterrupt:
        interrupted = True
    document = tally.document(session.adapter.describe(), interrupted)
    if session.as_json:
        session.emit(document)
    else:
        print_stats(session, document)
    return 1 if interrupted else 0


class Tally:
    def __init__(self) -> None:
        self.count: Counter[str] = Counter()
        self.bytes: Counter[str] = Counter()
        self.states: Counter[str] = Counter()
        self.tasks: Counter[str] = Counter()
        self.oldest: datetime.datetime | None = None
        self.newest: datetime.datetime | None = None

    def add_entry(self, entry: Entry, size: int | None = None, when: datetime.datetime | None = None) -> None:
        self.count[entry.kind] += 1
        self.bytes[entry.kind] += size if size is not None else entry.size or 0
        when = when or entry.modified
        if when is not None:
            self.oldest = when if self.oldest is None else min(self.oldest, when)
            self.newest = when if self.newest is None else max(self.newest, when)

    def add_results(self, found: Iterable[Result]) -> None:
        for result in found:
            self.add_entry(result.entry, result.size, result.when)
            self.states[result.state or "UNKNOWN"] += 1
            self.tasks[result.task_name or "(no name: result_extended is off)"] += 1

    def document(self, where: str, interrupted: bool) -> dict[str, Any]:
        return {
            "storage": where,
            "tasks": self.count[TASK],
            "groups": self.count[GROUP],
            "chord_bookkeeping": self.count[CHORD],
            "bytes": sum(self.bytes.values()),
            "bytes_by_kind": {kind: self.bytes[kind] for kind in KINDS},
            "by_state": dict(self.states.most_common()),
            "by_task": dict(self.tasks.most_common()),
            "oldest": _iso(self.oldest),
            "newest": _iso(self.newest),
            "interrupted": interrupted,
        }


def print_stats(session: Session, document: dict[str, Any]) -> None:
    session.say(
        f"Results in {document['storage']}"
        + (" (interrupted: counted so far)" if document["interrupted"] else "")
    )
    session.say(
        f"  task results       {document['tasks']:>10}  {_bytes(document['bytes_by_kind'][TASK]):>10}"
    )
    session.say(
        f"  group results      {document['groups']:>10}  {_bytes(document['bytes_by_kind'][GROUP]):>10}"
    )
    chords = document["chord_bookkeeping"]
    session.say(f"  chord bookkeeping  {chords:>10}  {_bytes(document['bytes_by_kind'][CHORD]):>10}")
    session.say(f"  total bytes        {_bytes(document['bytes']):>22}")
    session.say(f"  oldest             {document['oldest'] or '-'}")
    session.say(f"  newest             {document['newest'] or '-'}")
    if document["by_state"]:
        session.say("By state:")
        for state, count in document["by_state"].items():
            session.say(f"  {state:<20}{count:>10}")
    if document["by_task"]:
        session.say("By task:")
        for name, count in document["by_task"].items():
            session.say(f"  {_cut(name, 48):<48}{count:>10}")


# -- purge -------------------------------------------------------------------------


@results.command()
@click.argument("task_ids", nargs=-1)
@selection_options
@click.option("--dry-run", is_flag=True, help="List what would be deleted; delete nothing.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.option(
    "--batch-size",
    type=click.IntRange(1, DELETE_BATCH),
    default=DELETE_BATCH,
    show_default=True,
    help="Results deleted per batch.",
)
@json_option
@run
def purge(
    session: Session,
    task_ids: tuple[str, ...],
    selection: Selection,
    dry_run: bool,
    yes: bool,
    batch_size: int,
) -> int:
    """Delete results by id, or by --older-than, --state, --task (and --kind).

    Deletes in batches as it goes; safe to interrupt and run again: the next
    run selects what is left."""
    if not task_ids and not (selection.reads_results or selection.by_age):
        raise click.UsageError("name what to delete: task ids, --older-than, --newer-than, --state or --task")
    if task_ids and selection.kind != TASK:
        raise click.UsageError("ids name task results: drop --kind")
    where = session.adapter.describe()
    what = f"{len(task_ids)} named task results" if task_ids else selection.describe()
    chosen: Iterator[Result]
    if task_ids:
        chosen = (
            r
            for r in session.inventory.read(session.inventory.task_entry(i) for i in task_ids)
            if selection.fits(r)
        )
    else:
        chosen = select_for_purge(session.inventory, selection)
    if dry_run:
        count = 0
        for result in chosen:
            count += 1
            session.emit(result_line(result)) if session.as_json else session.say(result_row(result))
        session.say(f"Dry run: {count} {what} would be deleted from {where}.")
        return 0
    if not yes and not click.confirm(f"Delete {what} from {where}?", err=True):
        click.echo("Nothing deleted.", err=True)
        return 1
    deleted = 0
    stopped: str | None = None
    try:
        with session.progress((r.entry for r in chosen), "Deleting") as entries:
            for batch in session.inventory.delete(entries, batch_size):
                deleted += len(batch)
    except KeyboardInterrupt:
        stopped = "interrupted"
    except Exception as exc:  # what was deleted stays deleted: say so, and how to finish
        stopped = session.adapter.redact(f"stopped by {type(exc).__name__}: {exc}")
    if session.as_json:
        session.emit({"storage": where, "selection": what, "deleted": deleted, "stopped": stopped})
    elif stopped:
        session.say(
            f"Purge {stopped}; deleted {deleted} {what} from {where}. Run the same command again for the rest"
            "."
        )
    else:
        session.say(f"Deleted {deleted} {what} from {where}.")
    return 1 if stopped else 0


# -- lifecycle ---------------------------------------------------------------------


@results.command()
@click.option(
    "--apply", "apply_", is_flag=True, help="Create or update the rule (S3, GCS); print how (Azure)."
)
@json_option
@run
def lifecycle(session: Session, apply_: bool) -> int:
    """The storage's own expiry rule for the results prefix, and whether it
    matches result_expires."""
    from .probe import days, expiry_days

    conf = session.app.conf
    expires = system_checks.expires_seconds(conf)
    provider = session.backend.storage_config.provider
    rules = provider.lifecycle if provider else None
    adapter = session.adapter
    document: dict[str, Any] = {"storage": adapter.describe(), "result_expires": expires}
    if rules is None:
        document["native"] = False
        document["advice"] = (
            "This storage has no expiry rules of its own: cleanup() deletes expired results "
            "(Celery's celery.backend_cleanup task, which celery beat runs daily when result_expires is set; "
            "or run it from cron: celery -A proj call celery.backend_cleanup)."
        )
        if expires is None:
            document["advice"] += " result_expires is not set, so results never expire."
        _lifecycle_out(session, document)
        return 0
    document["native"] = True
    wanted = expiry_days(expires) if expires else None
    document["wanted_days"] = wanted
    if rules.policy is not None:  # the store's client cannot apply it (Azure)
        if wanted is None:
            document["advice"] = "result_expires is not set: results never expire, so no policy is needed."
            _lifecycle_out(session, document)
            return 0
        policy, command = rules.policy(adapter, float(expires or 0))
        document.update(
            policy=policy,
            command=command,
            advice="The expiry policy belongs to the storage account's management plane, out of the blob "
            "client's reach: save the policy as policy.json and run the command (it replaces the account's "
            "policy: merge in the rules of `az storage account management-policy show` first).",
        )
        _lifecycle_out(session, document)
        return 0
    current = rules.rule(adapter) if rules.rule else None
    document["rule"] = None if current is None else {"label": current[0], "days": current[1]}
    if apply_:
        if expires is None:
            raise click.ClickException(
                "result_expires is not set: results never expire, so no rule is applied."
            )
        assert rules.apply is not None
        document["applied"] = rules.apply(adapter, expires)
        current = rules.rule(adapter) if rules.rule else current
        document["rule"] = None if current is None else {"label": current[0], "days": current[1]}
    matches = (current is None and wanted is None) or (current is not None and current[1] == wanted)
    document["matches"] = matches
    if wanted is None:
        document["advice"] = "result_expires is not set: results never expire" + (
            "; this rule expires them anyway." if current else ", and no rule expires them."
        )
    elif current is None:
        document["advice"] = (
            f"No rule expires the results prefix: run with --apply to expire them after {days(wanted)}."
        )
    elif not matches:
        document["advice"] = (
            f"The rule expires results after {days(current[1])}, result_expires asks for {days(wanted)}: "
            "run with --apply to update it."
        )
    else:
        document["advice"] = (
            f"The rule {current[0]} expires results after {days(current[1])}, as result_expires asks."
        )
    _lifecycle_out(session, document)
    return 0 if matches else 1


def _lifecycle_out(session: Session, document: dict[str, Any]) -> None:
    from .probe import days

    if session.as_json:
        session.emit(document)
        return
    session.say(f"Storage:        {document['storage']}")
    expires = document["result_expires"]
    session.say(f"result_expires: {'not set' if expires is None else f'{expires:g} s'}")
    if "applied" in document:
        session.say(f"Applied:        {document['applied']}")
    if document.get("rule"):
        session.say(f"Rule:           {document['rule']['label']}, {days(document['rule']['days'])}")
    if "policy" in document:
        session.say("Policy document (policy.json):")
        session.say(_indent(json.dumps(document["policy"], indent=2)))
        session.say("Apply it with:")
        session.say(_indent(document["command"]))
    session.say(document["advice"])


# -- the Django door ---------------------------------------------------------------


class ProjectApp:
    """The Celery app of a Django project, found when a subcommand first asks:
    --app, else the app the project's package imports (as Celery's "First steps
    with Django" shows)."""

    def __init__(self, path: str | None) -> None:
        self.path = path
        self._app: Any = None

    @property
    def app(self) -> Any:
        if self._app is None:
            self._app = self._find()
        return self._app

    def _find(self) -> Any:
        if self.path:
            from celery.app.utils import find_app

            try:
                return find_app(self.path)
            except Exception as exc:
                raise click.ClickException(
                    f"--app {self.path!r}: no Celery app there ({type(exc).__name__}: {exc})"
                ) from None
        app = system_checks.project_app()
        if app is None:
            raise click.ClickException(
                f"No Celery app was found. {system_checks._import_hint()} Or name it: --app proj.celery:app."
            )
        return app


@click.group(name="celery_results", context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "-A", "--app", "app_path", metavar="MODULE[:APP]", help="The Celery app (default: the project's)."
)
@click.pass_context
def manage(ctx: click.Context, app_path: str | None) -> None:
    """Look at, count, check and purge the Celery results kept in a Django Storage.

    Exit codes: 0 fine, 1 findings or errors (or interrupted), 2 usage.
    """
    ctx.obj = ProjectApp(app_path)


for _command in list(results.commands.values()):
    manage.add_command(_command)


# -- output helpers ----------------------------------------------------------------


def _jsonable(value: Any) -> Any:
    if isinstance(value, (datetime.datetime, datetime.date)):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray)):
        return value.decode("utf-8", "replace")
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return repr(value)


def _iso(when: datetime.datetime | None) -> str | None:
    return None if when is None else when.isoformat()


def _short_time(when: datetime.datetime | None) -> str:
    return "-" if when is None else when.astimezone(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def _bytes(size: int | None) -> str:
    if size is None:
        return "-"
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


def _cut(text: str | None, width: int) -> str:
    text = text or "-"
    return text if len(text) <= width else text[: width - 1] + "…"


def _compact(value: Any) -> str:
    return json.dumps(value, default=_jsonable)


def _pretty(value: Any) -> str:
    return json.dumps(value, default=_jsonable, indent=2)


def _indent(text: str) -> str:
    return "\n".join(f"  {line}" for line in text.splitlines())
