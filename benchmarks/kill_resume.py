"""Kill `dynamic-mtl run` with SIGKILL at each commit point, resume it, compare with an uninterrupted run.

    .venv/bin/python -m benchmarks.kill_resume [--out DIR] [--data DIR]

Each case starts a tiny run (synthfaces with 20 identities, method ``dynamic``, fold 0, 2 epochs) in
a child process that sends itself SIGKILL at one point of the second epoch or of the publication,
then runs ``--resume`` and compares per_fold.csv, the tables, the epoch history and the step log
with the uninterrupted run (the clock columns aside). Prints a Markdown table and writes it to
``DIR/kill_resume.md`` (default ``benchmarks/results``).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

#: the points, in the order a run meets them
POINTS = {
    "mid_epoch": "epoch 2, after its 3rd training step",
    "after_step_flush": "epoch 2's step-log rows flushed, its checkpoint not written",
    "during_checkpoint": "half-way through writing epoch 2's checkpoint",
    "after_checkpoint": "epoch 2's checkpoint written, the fold not evaluated",
    "during_fold_json": "half-way through writing the per-fold JSON",
    "after_fold_json": "per-fold JSON written, the tables not",
    "during_tables": "half-way through writing per_fold.csv",
}


def _die() -> None:
    sys.stdout.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def install(point: str) -> None:
    """Patch the run so that this process kills itself at ``point``."""
    import experiments.face_expression.training as training
    import experiments.rundir as rundir
    from dynamic_mtl.callbacks import StepLogger

    write = rundir.atomic_write

    def write_half_then_die(path, writer):
        with open(rundir.temporary_name(Path(path)), "wb") as handle:
            import io

            buffer = io.BytesIO()
            writer(buffer)
            handle.write(buffer.getvalue()[: len(buffer.getvalue()) // 2])
        _die()

    if point == "mid_epoch":
        batch_end = StepLogger.on_train_batch_end

        def on_train_batch_end(self, batch, logs=None):
            batch_end(self, batch, logs)
            if self._epoch == 1 and batch == 2:
                _die()

        StepLogger.on_train_batch_end = on_train_batch_end
    elif point == "after_step_flush":
        epoch_end = StepLogger.on_epoch_end

        def on_epoch_end(self, epoch, logs=None):
            epoch_end(self, epoch, logs)
            if epoch == 1:
                _die()

        StepLogger.on_epoch_end = on_epoch_end
    elif point in ("during_checkpoint", "after_checkpoint"):
        save = training._save_checkpoint

        def save_checkpoint(path, model, state, best):
            if state["epoch"] == 2 and point == "during_checkpoint":
                training.atomic_write = write_half_then_die
            save(path, model, state, best)
            if state["epoch"] == 2:
                _die()

        training._save_checkpoint = save_checkpoint
    elif point in ("during_fold_json", "after_fold_json", "during_tables"):

        def patched(path, writer):
            path = Path(path)
            json_point = path.parent.name == "per_fold" and path.suffix == ".json"
            if point == "during_fold_json" and json_point or point == "during_tables" and path.name == "per_fold.csv":
                write_half_then_die(path, writer)
            write(path, writer)
            if point == "after_fold_json" and json_point:
                _die()

        rundir.atomic_write = patched
    else:
        raise SystemExit(f"unknown point {point!r}; known: {sorted(POINTS)}")


def _run(args: list[str], point: str | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    command = [sys.executable, "-m", "benchmarks.kill_resume", "--child", point or "none", "--", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True)


def _same(clean: Path, other: Path) -> dict:
    def frame(path, drop):
        return pd.read_csv(path).drop(columns=[c for c in drop if c in pd.read_csv(path, nrows=0).columns])

    out = {}
    for name, path, drop in (
        ("per_fold.csv", "per_fold.csv", ["train_seconds"]),
        ("table2.csv", "table2.csv", []),
        ("table3.csv", "table3.csv", []),
        ("history", "per_fold/dynamic_fold0_history.csv", []),
        ("step log", "steps/dynamic_fold0.csv", ["wall_time"]),
    ):
        try:
            pd.testing.assert_frame_equal(
                frame(clean / path, drop), frame(other / path, drop), check_exact=False, rtol=1e-6
            )
            out[name] = True
        except (AssertionError, FileNotFoundError):
            out[name] = False
    steps = pd.read_csv(other / "steps" / "dynamic_fold0.csv")["step"] if (other / "steps").exists() else []
    out["duplicated step rows"] = int(len(steps) - len(set(steps)))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="benchmarks/results", help="where kill_resume.md goes")
    parser.add_argument("--data", help="a prepared synthfaces dataset (default: 20 identities, prepared under --work)")
    parser.add_argument("--work", default="/tmp/dynamic-mtl-kill-resume", help="scratch folder for the runs")
    parser.add_argument("--points", nargs="+", default=list(POINTS), choices=list(POINTS))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        if args.child != "none":
            install(args.child)
        from experiments.cli import main as cli

        return cli([a for a in args.rest if a != "--"])

    work = Path(args.work)
    data = Path(args.data) if args.data else work / "data"
    if not args.data and not (data / "manifest.csv").exists():
        from data_prep.prepare import prepare_synthfaces

        prepare_synthfaces(data, num_identities=20, seed=0, image_size=32, progress=False)
    results = work / f"results-{int(time.time())}"
    common = [
        "run",
        "--config",
        "tiny",
        "--data-dir",
        str(data),
        "--results-dir",
        str(results),
        "--epochs",
        "2",
        "--folds",
        "0",
        "--methods",
        "dynamic",
        "--quiet",
    ]
    start = time.perf_counter()
    clean = _run(common + ["--run-id", "clean"])
    if clean.returncode:
        raise SystemExit(f"the uninterrupted run failed:\n{clean.stdout[-2000:]}{clean.stderr[-2000:]}")
    rows = []
    for point in args.points:
        killed = _run(common + ["--run-id", point], point)
        resumed = _run(["run", "--config", str(results / "synthfaces" / point / "config.yaml"), "--resume", "--quiet"])
        same = _same(results / "synthfaces" / "clean", results / "synthfaces" / point)
        rows.append(
            {
                "point": point,
                "where": POINTS[point],
                "killed (SIGKILL)": killed.returncode == -signal.SIGKILL,
                "resume exit": resumed.returncode,
                **same,
            }
        )
        print(rows[-1], flush=True)
    table = pd.DataFrame(rows)
    identical = int(
        (
            table[["per_fold.csv", "table2.csv", "table3.csv", "history", "step log"]].all(axis=1)
            & table["killed (SIGKILL)"]
            & (table["resume exit"] == 0)
        ).sum()
    )
    text = (
        f"# Kill and resume probe\n\n`.venv/bin/python -m benchmarks.kill_resume` on {_machine()}: synthfaces "
        f"(20 identities, 32 px), config `tiny`, method `dynamic`, fold 0, 2 epochs; "
        f"{round(time.perf_counter() - start)} s.\n\n**{identical} of {len(table)} kill points resume to "
        f"identical tables, histories and step logs.**\n\n" + _markdown(table) + "\n"
    )
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "kill_resume.md").write_text(text)
    print(text)
    return 0 if identical == len(table) else 1


def _markdown(table: pd.DataFrame) -> str:
    lines = ["| " + " | ".join(table.columns) + " |", "|" + "---|" * len(table.columns)]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join(lines)


def _machine() -> str:
    from experiments.environment import cpu_model

    return f"{cpu_model()}, {os.cpu_count()} cores"


if __name__ == "__main__":
    sys.exit(main())
