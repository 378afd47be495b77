"""The README's demo command runs end to end and exits cleanly."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from support.processes import REPO

pytestmark = pytest.mark.e2e


def test_demo_runs_tasks_group_and_chord(tmp_path):
    env = {**os.environ, "DEMO_RUN_DIR": str(tmp_path / "run")}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    run = subprocess.run(
        [sys.executable, str(REPO / "demo" / "run.py")],
        capture_output=True,
        text=True,
        env=env,
        timeout=240,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    out = run.stdout
    assert "count_words('the quick brown fox jumps') = 5" in out
    assert "1/5 words" in out or "2/5 words" in out  # progress was shown while it ran
    assert "squares = [1, 4, 9, 16, 25]" in out
    assert "total = 385" in out
    assert f"{tmp_path / 'run' / 'celery-results'}/celery-task-meta-" in out
    assert out.rstrip().endswith("Demo finished.")
