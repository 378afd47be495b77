"""``python manage.py celery_results SUBCOMMAND``: the command line of cli.py, for a Django project.

The subcommands, options, output and exit codes are those of
``celery -A proj results``; the Celery app is the project's (the one its
package imports, as Celery's "First steps with Django" shows) unless
``--app`` names another.
"""

from __future__ import annotations

import argparse
from typing import Any

from django.core.management.base import BaseCommand

from django_storage_celery_results.cli import manage

#: Options manage.py itself reads before any command runs (they take a value).
DJANGO_OPTIONS = ("--settings", "--pythonpath")


class Command(BaseCommand):
    help = "Look at, count, check and purge the Celery results kept in a Django Storage (see --help)."
    requires_system_checks: list[str] = []  # `check` is a subcommand; a broken store must not stop `ls`

    def run_from_argv(self, argv: list[str]) -> None:
        """Hand everything after the command's name to the click group."""
        prog = f"{_program(argv[0])} {argv[1]}"
        manage.main(args=without_django_options(argv[2:]), prog_name=prog)  # exits with the code

    def add_arguments(self, parser: Any) -> None:
        # call_command() goes through Django's parser: the app, then the subcommand with all it takes
        parser.add_argument("-A", "--app", help="the Celery app (default: the project's)")
        parser.add_argument(
            "args", nargs=argparse.REMAINDER, help="a subcommand and its options (see --help)"
        )

    def handle(self, *args: str, **options: Any) -> None:
        """call_command("celery_results", "ls", "--json"): a non-zero exit raises SystemExit."""
        app = ["--app", options["app"]] if options.get("app") else []
        try:
            manage.main(args=[*app, *args], prog_name="celery_results")
        except SystemExit as exc:
            if exc.code not in (0, None):
                raise


def without_django_options(args: list[str]) -> list[str]:
    kept: list[str] = []
    skip = False
    for arg in args:
        if skip:
            skip = False
        elif arg in DJANGO_OPTIONS:
            skip = True
        elif not arg.startswith(tuple(f"{option}=" for option in DJANGO_OPTIONS)):
            kept.append(arg)
    return kept


def _program(path: str) -> str:
    name = path.rsplit("/", 1)[-1]
    return f"python {name}" if name.endswith(".py") else name
