"""The benchmark harness (benchmarks/) runs and reports; the correctness claims behind its figures.

Nothing here is timed: timings live in benchmarks/results, made by `make bench`.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import run as bench_run  # noqa: E402
from benchmarks.common import ROW_FIELDS, row, summarize  # noqa: E402


def test_rows_summaries_and_markdown(tmp_path, monkeypatch):
    assert summarize([3, 1, 2]) == {"median": 2.0, "min": 1.0, "max": 3.0, "repeats": 3}
    rows = [
        row("train step (x)", "dynamic", "step time / plain", "ratio", [1.0, 1.02, 0.99], target="<= 1.05"),
        row("train step (x)", "plain", "step time", "ms", [10.0, 11.0]),
        row("memory: prepare", "20 identities", "peak RSS, main process", "MiB", value=640.0),
    ]
    assert all(set(ROW_FIELDS) <= set(r) for r in rows)
    info = {"cpu": "Test CPU 9000", "cores": 2, "tensorflow": "2.x", "keras": "3.x", "host": "h", "gpus": []}
    page, summary = bench_run.markdown(rows, info, "tiny", {"broken": "Traceback ..."}, 1.0)
    assert "Test CPU 9000" in page and "TensorFlow 2.x" in summary
    assert "| dynamic | step time / plain (ratio) | 1 [0.99-1.02] | <= 1.05 |" in summary
    assert "peak RSS, main process" in summary and "| plain |" not in summary
    assert "GPU timings" in summary and "not measured yet" in summary
    assert "## Failed benchmarks" in page and "### broken" in page

    doc = tmp_path / "performance.md"
    doc.write_text(f"intro\n{bench_run.SUMMARY_START}\nold\n{bench_run.SUMMARY_END}\noutro\n")
    monkeypatch.setattr(bench_run, "DOC", doc)
    assert bench_run.update_doc(summary)
    text = doc.read_text()
    assert "old" not in text and "Test CPU 9000" in text and text.startswith("intro") and text.endswith("outro\n")


def test_make_bench_harness_runs_in_tiny_mode(tmp_path):
    """`python -m benchmarks.run` end to end on two small benchmarks: .md + .csv named after the subset (never
    the day's full run's files), machine named."""
    env = dict(os.environ, BENCH_TINY="1", TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--only", "train_small,ttc", "--out", str(tmp_path), "--no-doc"],
        cwd=str(ROOT),
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    md = list(tmp_path.glob("*-tiny-only-train_small+ttc.md"))
    csvs = list(tmp_path.glob("*-tiny-only-train_small+ttc.csv"))
    assert len(md) == 1 and len(csvs) == 1
    page = md[0].read_text()
    assert "TensorFlow" in page and "logical cores" in page and "not measured yet" in page
    with open(csvs[0]) as handle:
        records = list(csv.DictReader(handle))
    cases = {r["case"] for r in records}
    assert {"plain", "static", "dynamic", "naive_dynamic", "uncertainty", "gradnorm", "dwa"} <= cases
    assert {"fused Adam, rewrites off / keras Adam, rewrites on"} <= cases  # benchmarks/ttc.py
    assert all(float(r["median"]) > 0 for r in records if r["metric"] == "step time")
    assert records[0]["cpu"] and records[0]["tensorflow"]


def test_training_adds_no_host_round_trip_per_step_beyond_keras_fit():
    """The two-tape step, with StepLogger, reads the device as often as a plain Keras `fit`
    (once per train_function call); steps_per_execution=8 makes that once per 8 steps."""
    from benchmarks.train_step import count_host_round_trips

    plain = count_host_round_trips(16, 1, 0, "plain")
    dynamic = count_host_round_trips(16, 1, 8, "dynamic")
    batched = count_host_round_trips(16, 8, 8, "dynamic")
    assert plain["train_function_calls"] == dynamic["train_function_calls"] == 16
    assert dynamic["pythonify_on_training_thread"] == plain["pythonify_on_training_thread"]
    assert batched["train_function_calls"] == 2
    assert batched["pythonify_on_training_thread"] <= plain["pythonify_on_training_thread"] - 14


@pytest.mark.slow
def test_xla_and_no_xla_give_the_same_losses():
    """jit_compile=True trains to the same per-step losses and weights as jit_compile=False."""
    from benchmarks.train_step import xla_loss_agreement

    result = xla_loss_agreement(steps=4, image_size=16, batch=8)
    assert result["max_rel_diff"] < 1e-3, result


def test_harness_benchmark_reports_harness_bare_step_and_matmul_rows(monkeypatch, capsys):
    """benchmarks.harness in tiny mode: the harness, the bare step, their ratio and the matmul rate.

    In this process (its ``main``, as ``python -m benchmarks.harness`` calls it): the subprocess path of
    the benchmarks is `test_make_bench_harness_runs_in_tiny_mode`'s, and a second TensorFlow start-up
    here would prove nothing more."""
    import json

    from benchmarks import harness

    monkeypatch.setenv("BENCH_TINY", "1")
    capsys.readouterr()
    assert harness.main([]) == 0
    stdout = capsys.readouterr().out
    payload = json.loads(
        next(line for line in stdout.splitlines() if line.startswith("BENCH_JSON "))[len("BENCH_JSON ") :]
    )
    rows = {r["metric"]: r for r in payload["rows"]}
    trained = rows[harness.HARNESS_METRIC]["median"]
    bare = rows["bare train step throughput (one in-memory batch)"]["median"]
    assert trained > 0 and bare > 0
    assert rows["harness / bare step"]["median"] == pytest.approx(trained / bare, rel=1e-6)
    assert rows["matmul rate"]["unit"] == "GFLOP/s" and rows["matmul rate"]["median"] > 0
