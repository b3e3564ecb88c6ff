"""Shared helpers of the benchmarks: the machine, robust statistics, result rows, subprocesses.

Every benchmark returns a list of *rows* (dicts with the keys of ``ROW_FIELDS``). A timed row
holds the median and the min-max over ``repeats`` measurements; the things a row is compared
with were measured in the same process, interleaved, repeat by repeat.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ROW_FIELDS = ("section", "case", "metric", "unit", "median", "min", "max", "repeats", "target", "note")


def quick_mode() -> bool:
    """``BENCH_QUICK=1``: reduced sizes and repeats (smoke runs, CI)."""
    return os.environ.get("BENCH_QUICK", "0") not in ("", "0", "false", "no")


def tiny_mode() -> bool:
    """``BENCH_TINY=1``: the smallest sizes that still run every code path (the harness's own test)."""
    return os.environ.get("BENCH_TINY", "0") not in ("", "0", "false", "no")


def machine() -> dict:
    """CPU model, core count, memory, TF / Keras versions and the accelerator (none here)."""
    model = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gb = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem_gb = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    info = {
        "host": socket.gethostname(),
        "cpu": model,
        "cores": os.cpu_count(),
        "memory_gb": mem_gb,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
    try:
        out = subprocess.run(
            [
                sys.executable,
                "-c",
                "import os; os.environ['TF_CPP_MIN_LOG_LEVEL']='3'\n"
                "import tensorflow as tf, keras, json\n"
                "print(json.dumps({'tensorflow': tf.__version__, 'keras': keras.__version__,"
                " 'gpus': [d.name for d in tf.config.list_physical_devices('GPU')]}))",
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )
        info.update(json.loads(out.stdout.strip().splitlines()[-1]))
    except Exception as err:  # noqa: BLE001
        info["tensorflow"] = f"unknown ({err})"
    return info


def summarize(values) -> dict:
    values = [float(v) for v in values]
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "repeats": len(values)}


def row(
    section: str, case: str, metric: str, unit: str, values=None, value=None, target: str = "", note: str = ""
) -> dict:
    """A result row: ``values`` (repeats, summarised) or a single ``value``."""
    if values is not None:
        stats = summarize(values)
    else:
        stats = {"median": value, "min": value, "max": value, "repeats": 1}
    return {"section": section, "case": case, "metric": metric, "unit": unit, **stats, "target": target, "note": note}


def peak_rss_mb(children: bool = False) -> float:
    """Peak resident set size of this process (or of its waited-for children), MiB."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN if children else resource.RUSAGE_SELF)
    return usage.ru_maxrss / 1024.0  # Linux: KiB


class Stopwatch:
    def __enter__(self):
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.start
        return False


def emit(rows: list[dict], extra: dict | None = None) -> None:
    """Print the rows as the last line of stdout (what ``run_module`` parses)."""
    print("BENCH_JSON " + json.dumps({"rows": rows, **(extra or {})}, default=float), flush=True)


def child_env(**extra) -> dict:
    env = dict(
        os.environ,
        TF_CPP_MIN_LOG_LEVEL="2",
        CUDA_VISIBLE_DEVICES=os.environ.get("CUDA_VISIBLE_DEVICES", ""),
        PYTHONPATH=os.pathsep.join([str(ROOT)] + [p for p in [os.environ.get("PYTHONPATH")] if p]),
    )
    env.update({k: str(v) for k, v in extra.items()})
    return env


def run_module(module: str, args: list[str] | None = None, timeout: float = 1800, env: dict | None = None) -> dict:
    """Run ``python -m module args`` in a fresh process; return its ``BENCH_JSON`` payload.

    Each benchmark runs in its own process: TensorFlow's device configuration (logical CPUs)
    is fixed at start-up, and peak RSS is per process.
    """
    cmd = [sys.executable, "-m", module, *(args or [])]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=str(ROOT), env=env or child_env())
    payload = None
    for line in out.stdout.splitlines():
        if line.startswith("BENCH_JSON "):
            payload = json.loads(line[len("BENCH_JSON ") :])
    if out.returncode != 0 or payload is None:
        raise RuntimeError(f"{' '.join(cmd)} failed (rc {out.returncode}):\n{out.stderr[-4000:]}\n{out.stdout[-2000:]}")
    return payload
