"""The suite's own scheduling: ``make test`` runs ``pytest -n 2 --dist loadgroup`` and relies on the tests of
one ``xdist_group`` running on one worker, so that an expensive session fixture (``mirrored_report`` in
tests/conftest.py) is made once. A pytest / pytest-xdist pair that silently stops grouping doubles its cost."""

from __future__ import annotations

import os
import subprocess
import sys

GROUPED_TEST = """
import os
import pytest

@pytest.mark.xdist_group("shared")
def test_{name}(tmp_path_factory):
    with open(os.environ["PIDS_FILE"], "a") as out:
        out.write(f"{{os.getpid()}}\\n")

def test_{name}_ungrouped():
    pass
"""


def test_an_xdist_group_runs_on_one_worker(tmp_path):
    for name in ("a", "b", "c", "d"):
        (tmp_path / f"test_{name}.py").write_text(GROUPED_TEST.format(name=name))
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    pids = tmp_path / "pids.txt"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-n", "2", "--dist", "loadgroup", "-p", "no:cacheprovider"],
        cwd=tmp_path,
        env={**os.environ, "PIDS_FILE": str(pids)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    ran = pids.read_text().split()  # the pid of the worker of each grouped test
    workers = set(ran)
    assert len(ran) == 4
    assert len(workers) == 1, f"the group's 4 tests ran on {len(workers)} workers: --dist loadgroup does not group"
