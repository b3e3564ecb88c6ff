"""Peak memory (RSS) of data preparation and of a small training run, vs dataset size.

Every measured command runs in a fresh process; its memory is sampled every 50 ms from
``/proc`` over the whole process tree (the synthfaces generator and MTCNN ``--workers`` use
child processes), and the main process's own peak comes from ``wait4``'s ``ru_maxrss``.

* ``prepare synthfaces`` at 20 / 40 / 80 identities (CLI, as a user runs it);
* ``prepare ckplus`` (MTCNN, batch 16) on CK+-layout trees of real photos with 8 / 16 / 32
  sequences (4 frames kept per sequence);
* training: the quick profile (``dynamic-mtl run --config quick``, method ``dynamic``, fold 0,
  1 epoch) on each prepared synthfaces dataset.

If data preparation streams, its peak RSS stays flat as the dataset grows.

    python -m benchmarks.memory [--sizes 20,40,80] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from benchmarks.common import ROOT, child_env, emit, quick_mode, row, tiny_mode


def _tree_rss_kib(pid: int) -> int:
    """Sum of VmRSS over ``pid`` and all its descendants (KiB); 0 if gone."""
    total, stack, seen = 0, [pid], set()
    while stack:
        p = stack.pop()
        if p in seen:
            continue
        seen.add(p)
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
                    break
            for task in os.listdir(f"/proc/{p}/task"):
                children = Path(f"/proc/{p}/task/{task}/children").read_text().split()
                stack.extend(int(c) for c in children)
        except (OSError, ValueError):
            continue
    return total


def measure_command(cmd: list[str], timeout: float = 1800, env: dict | None = None) -> dict:
    """Run ``cmd``; return seconds, the main process's peak RSS and the sampled peak tree RSS (MiB)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        cmd, cwd=str(ROOT), env=env or child_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    peak = [0]
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], _tree_rss_kib(proc.pid))
            done.wait(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    stderr_chunks = []
    reader = threading.Thread(target=lambda: stderr_chunks.append(proc.stderr.read()), daemon=True)
    reader.start()
    deadline = time.monotonic() + timeout
    status = rusage = None
    while True:
        pid, status, rusage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.monotonic() > deadline:
            proc.kill()
            _, status, rusage = os.wait4(proc.pid, 0)
            break
        time.sleep(0.02)
    done.set()
    sampler.join()
    reader.join(timeout=5)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{''.join(stderr_chunks)[-3000:]}")
    return {
        "seconds": time.perf_counter() - t0,
        "main_peak_mib": rusage.ru_maxrss / 1024.0,
        "tree_peak_mib": peak[0] / 1024.0,
    }


def make_ckplus_photo_tree(root: Path, sequences: int, seed: int = 0) -> int:
    """A CK+-layout tree of real photos: ``sequences`` subjects x 1 sequence x 4 frames (640x490)."""
    from benchmarks.mtcnn import make_photos
    from data_prep.raw_trees import ckplus_photo_tree

    return ckplus_photo_tree(root, make_photos(8, seed), sequences, frames=4)


def bench(sizes: list[int], mtcnn_sizes: list[int], keep: str | None = None) -> tuple[list[dict], dict]:
    base = Path(keep or tempfile.mkdtemp(prefix="bench_memory_"))
    base.mkdir(parents=True, exist_ok=True)
    py = sys.executable
    rows, prepared = [], {}
    section = "memory: prepare synthfaces (CLI, 64 px, generator processes included)"
    for n in sizes:
        out = base / f"synthfaces_{n}"
        r = measure_command(
            [
                py,
                "-m",
                "experiments.cli",
                "prepare",
                "synthfaces",
                "--out",
                str(out),
                "--num-identities",
                str(n),
                "--num-folds",
                str(min(10, n)),
                "--quiet",
            ]
        )
        images = sum(1 for _ in open(out / "manifest.csv")) - 1
        prepared[n] = str(out)
        note = f"{images} images, {r['seconds']:.0f} s"
        rows.append(
            row(section, f"{n} identities", "peak RSS, main process", "MiB", value=r["main_peak_mib"], note=note)
        )
        rows.append(
            row(section, f"{n} identities", "peak RSS, process tree", "MiB", value=r["tree_peak_mib"], note=note)
        )

    section = "memory: prepare ckplus (CLI, MTCNN batch 16, 1 process, real 640x490 photos)"
    for n in mtcnn_sizes:
        raw, out = base / f"ckplus_raw_{n}", base / f"ckplus_{n}"
        images = make_ckplus_photo_tree(raw, n)
        r = measure_command(
            [
                py,
                "-m",
                "experiments.cli",
                "prepare",
                "ckplus",
                "--root",
                str(raw),
                "--out",
                str(out),
                "--quiet",
                "--num-folds",
                "2",
                "--image-size",
                "182",
            ]
        )
        rows.append(
            row(
                section,
                f"{n} sequences",
                "peak RSS, main process",
                "MiB",
                value=r["main_peak_mib"],
                note=f"{images} images, {r['seconds']:.0f} s",
            )
        )

    section = (
        "memory: quick-profile run (dynamic-mtl run --config quick --methods dynamic --folds 0 "
        "--epochs 1 --pretrained none)"
    )
    for n in sizes:
        results = base / f"runs_{n}"
        r = measure_command(
            [
                py,
                "-m",
                "experiments.cli",
                "run",
                "--config",
                "quick",
                "--data-dir",
                prepared[n],
                "--methods",
                "dynamic",
                "--folds",
                "0",
                "--epochs",
                "1",
                "--pretrained",
                "none",
                "--results-dir",
                str(results),
                "--run-id",
                "memory",
                "--quiet",
            ]
        )
        images = sum(1 for _ in open(Path(prepared[n]) / "manifest.csv")) - 1
        rows.append(
            row(
                section,
                f"{n} identities",
                "peak RSS",
                "MiB",
                value=r["main_peak_mib"],
                note=f"{images} images (48 px, batch 32, small_cnn width 16), {r['seconds']:.0f} s",
            )
        )
    return rows, prepared


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default=None, help="synthfaces identities, comma-separated")
    p.add_argument("--mtcnn-sizes", default=None, help="CK+-layout sequences of real photos, comma-separated")
    p.add_argument("--keep", default=None, help="directory for the prepared datasets (kept)")
    a = p.parse_args(argv)
    tiny, quick = tiny_mode(), quick_mode()
    sizes = (
        [int(s) for s in a.sizes.split(",")]
        if a.sizes
        else ([4, 8] if tiny else [10, 20, 40] if quick else [20, 40, 80])
    )
    mtcnn_sizes = (
        [int(s) for s in a.mtcnn_sizes.split(",")]
        if a.mtcnn_sizes
        else [2, 4]
        if tiny
        else [4, 8, 16]
        if quick
        else [8, 16, 32]
    )
    rows, prepared = bench(sizes, mtcnn_sizes, a.keep)
    emit(rows, {"prepared": {str(k): v for k, v in prepared.items()}})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
