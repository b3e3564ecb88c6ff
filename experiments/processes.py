"""Runs side by side: one command per process, the machine's cores shared out between them.

The networks of the studies are small, so one process uses two cores poorly; two single-threaded runs side
by side get through more work than one run on both cores. ``dynamic-mtl study --jobs`` and
``python -m experiments.ttc.seeds --jobs`` run their seeds with :func:`run_side_by_side`.
"""

from __future__ import annotations

import os
import resource
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

#: The folder holding the ``experiments`` package (and ``data_prep``, ``dynamic_mtl``) this process runs.
CHECKOUT = Path(__file__).resolve().parent.parent


def threads_per_job(jobs: int, cores: int | None = None) -> int:
    """TensorFlow threads for each of ``jobs`` concurrent runs: the machine's cores shared out, at least 1."""
    return max(1, (cores or os.cpu_count() or 1) // jobs)


def _children_cpu() -> float:
    """CPU seconds (user + system) of this process's reaped child processes."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return children.ru_utime + children.ru_stime


def log_tail(path: Path, lines: int = 3) -> str:
    """The last ``lines`` non-empty lines of a log, joined with `` | ``."""
    text = Path(path).read_text(errors="replace") if Path(path).is_file() else ""
    return " | ".join(text.strip().splitlines()[-lines:])


def run_side_by_side(
    commands: Mapping[str, Sequence[str]],
    logs: Mapping[str, Path],
    jobs: int,
    prefix: str = "[dynamic-mtl]",
    append: bool = False,
    intra_op_threads: int | None = None,
    usage: dict[str, tuple[float, float]] | None = None,
) -> list[str]:
    """Runs each command (name -> argv) in its own process, at most ``jobs`` at a time in the order given,
    each with :func:`threads_per_job` TensorFlow intra- and inter-op threads (``TF_NUM_INTRAOP_THREADS`` /
    ``TF_NUM_INTEROP_THREADS``; ``intra_op_threads``: that many intra-op threads instead), :data:`CHECKOUT`
    first on its ``PYTHONPATH``, and its stdout and stderr in ``logs[name]`` (``append``: added to the end).
    Prints a line when a process starts and ends; ``usage`` gets each finished process's (wall seconds, CPU
    seconds). Returns the names whose process failed, once every process has ended; on an interruption the
    running processes are terminated."""
    if jobs < 1:
        raise ValueError(f"jobs must be >= 1, got {jobs}")
    threads = str(threads_per_job(jobs))
    intra = threads if intra_op_threads is None else str(intra_op_threads)
    env = {**os.environ, "TF_NUM_INTRAOP_THREADS": intra, "TF_NUM_INTEROP_THREADS": threads}
    # the processes import this checkout's packages, whatever their working directory finds first
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(CHECKOUT), os.environ.get("PYTHONPATH")]))
    waiting, running, failed = list(commands), {}, []
    try:
        while waiting or running:
            while waiting and len(running) < jobs:
                name = waiting.pop(0)
                Path(logs[name]).parent.mkdir(parents=True, exist_ok=True)
                log = open(logs[name], "ab" if append else "wb")  # noqa: SIM115 (closed when the process ends)
                process = subprocess.Popen(list(commands[name]), stdout=log, stderr=subprocess.STDOUT, env=env)
                running[name] = (process, log, time.perf_counter())
                described = (
                    f"{threads} TensorFlow thread(s)" if intra == threads else f"{intra} TensorFlow intra-op thread(s)"
                )
                print(f"{prefix} {name}: running in its own process ({described}); log {logs[name]}", flush=True)
            time.sleep(0.5)
            for name, (process, log, started) in list(running.items()):
                before = _children_cpu()
                if process.poll() is None:
                    continue
                log.close()
                del running[name]
                minutes = (time.perf_counter() - started) / 60
                if usage is not None:  # poll() reaped this one process: the children's CPU grew by its own
                    usage[name] = (60 * minutes, _children_cpu() - before)
                state = "finished" if process.returncode == 0 else f"FAILED (exit {process.returncode})"
                print(f"{prefix} {name} {state} after {minutes:.1f} min", flush=True)
                if process.returncode != 0:
                    failed.append(name)
    finally:
        for process, log, _ in running.values():
            process.terminate()
            process.wait()
            log.close()
    return failed
