"""MultiWorkerMirroredStrategy: 2 worker processes on 127.0.0.1 train to the same weights as one
worker with the same global batch (benchmarks/multiworker.py does the launching).

Each worker gets the global-batch tf.data dataset and ``fit`` distributes it, as
``dynamic-mtl run --strategy multiworker`` does (``benchmarks.multiworker --input function``,
each worker reading its own half of every batch, gives the same weights too)."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.multiworker import free_ports, launch  # noqa: E402

#: Same bound as tests/test_distributed.py: round-off only (seen: 4e-6 after 3 steps).
RELATIVE_TOLERANCE = 1e-3
SHARE_OFF_TOLERANCE = 1e-2


def _can_bind_localhost() -> bool:
    try:
        ports = free_ports(2)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", ports[0]))
        return True
    except OSError:
        return False


@pytest.mark.slow
@pytest.mark.skipif(not _can_bind_localhost(), reason="cannot bind TCP ports on 127.0.0.1")
def test_two_workers_match_one_worker(tmp_path):
    report = launch(tmp_path, steps=3, weighting="dynamic", timed_steps=0, workers=2, timeout=900, input_mode="auto")
    assert report["movement"] > 1e-2, report  # training really happened
    for i in range(2):
        worker = report[f"worker{i}"]
        assert worker["replicas"] == 2, worker  # a real 2-worker cluster
        assert worker["relative_diff"] < RELATIVE_TOLERANCE, worker
        assert worker["share_off"] < SHARE_OFF_TOLERANCE, worker
        # batch-norm statistics, center-loss centers and the step log agree too
        assert worker["max_abs_diff_all"] < 1e-3, worker
