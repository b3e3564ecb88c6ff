"""The experiment harness's throughput beside the bare train step and the machine's matmul rate.

One fold of the quick profile (``static``) is trained by ``experiments.face_expression.training.FoldRunner`` exactly
as ``dynamic-mtl run`` trains it: one ``fit`` call over the fold's epochs (one input pipeline),
validation on the held-out subjects and a checkpoint after every epoch, then the test evaluation.
Beside it, in the same process and interleaved repeat by repeat: the same model's train step on one
in-memory batch repeated (``fit`` on ``Dataset.from_tensors(batch).repeat()``), and float32
``tf.matmul`` of 1024 x 1024 matrices. ``harness / bare step`` is the share of the step's throughput the harness keeps.

Side by side (not in tiny mode): one fold of the study profile (32 px, the networks of
``make reproduce-study``) trained by one process on every core, then by two processes at once with one
TensorFlow thread each (``dynamic-mtl study --jobs 2``); their summed images/s over the single
process's is the speed-up of running the study's seeds side by side.

    python -m benchmarks.harness [--data DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

from benchmarks.common import emit, quick_mode, row, tiny_mode

SECTION = "harness (quick profile, one fold, static)"
SIDE_BY_SIDE = "harness side by side (study profile, one fold, static)"
HARNESS_METRIC = "harness throughput (one fit per fold, per-epoch validation + checkpoint, test)"


def settings() -> dict:
    s = dict(identities=80, epochs=3, steps=40, matmul=1024, repeats=3)  # 80: the quick profile's data
    if quick_mode():
        s.update(identities=40, epochs=2, steps=20, repeats=2)
    if tiny_mode():
        s.update(identities=10, epochs=1, steps=4, matmul=256, repeats=1)
    return s


def matmul_gflops(n: int, calls: int = 10) -> float:
    import tensorflow as tf

    a = tf.random.normal((n, n))
    b = tf.random.normal((n, n))
    tf.matmul(a, b).numpy()
    start = time.perf_counter()
    for _ in range(calls):
        c = tf.matmul(a, b)
    c.numpy()
    return 2.0 * n**3 * calls / (time.perf_counter() - start) / 1e9


def prepare_data(s: dict, work: str) -> str:
    """A synthfaces set of the settings' size (the quick profile's 80 identities) under ``work``."""
    from data_prep.prepare import prepare_synthfaces

    data = f"{work}/data"
    prepare_synthfaces(data, num_identities=s["identities"], image_size=64, progress=False)
    return data


def static_fold_runner(profile: str, data: str, epochs: int, work: str):
    """``(runner, split, method, images_per_fold)``: fold 0 of a bundled profile, method ``static``, as
    ``dynamic-mtl run`` trains it, built and traced by one untimed run; images per fold counted from the
    fold's training batches."""
    import tensorflow as tf

    from data_prep import seeds
    from data_prep.pipeline import identity_map
    from experiments.face_expression.config import ExperimentConfig
    from experiments.face_expression.data import load_prepared
    from experiments.face_expression.methods import parse_method
    from experiments.face_expression.training import FoldRunner

    config = ExperimentConfig.load(profile).override(
        data_dir=data, epochs=epochs, pretrained_checkpoint="none", methods=["static"], folds=[0]
    )
    prepared = load_prepared(config)
    split = prepared.split(0, config.validation_subjects, config.seed)
    runner = FoldRunner(config, prepared, f"{work}/run", tf.distribute.get_strategy(), len(split.train_subjects), None)
    method = parse_method("static")
    runner.run(method, split, resume=False)  # build and trace once
    dataset = runner.training_dataset(split, identity_map(split.train_subjects), seeds.EPOCH_ORDER.seed(0, 0, 0))
    images_per_fold = sum(1 for _ in dataset) * config.batch_size * epochs
    return runner, split, method, images_per_fold


def bench(data: str, work: str) -> list[dict]:
    import tensorflow as tf

    from data_prep import seeds
    from data_prep.pipeline import identity_map

    s = settings()
    runner, split, method, images_per_fold = static_fold_runner("quick", data, s["epochs"], work)
    config = runner.config
    dataset = runner.training_dataset(split, identity_map(split.train_subjects), seeds.EPOCH_ORDER.seed(0, 0, 0))
    x, y = next(iter(dataset))
    model = runner.model_for(method, 0)
    repeated = tf.data.Dataset.from_tensors((x, y)).repeat()
    model.fit(repeated, steps_per_epoch=2, epochs=1, verbose=0)

    harness, bare, matmul = [], [], []
    for _ in range(s["repeats"]):
        start = time.perf_counter()
        runner.run(method, split, resume=False)
        harness.append(images_per_fold / (time.perf_counter() - start))
        model = runner.model_for(method, 0)
        start = time.perf_counter()
        model.fit(repeated, steps_per_epoch=s["steps"], epochs=1, verbose=0)
        bare.append(s["steps"] * config.batch_size / (time.perf_counter() - start))
        matmul.append(matmul_gflops(s["matmul"]))
    case = f"small_cnn 48 px, batch {config.batch_size}, {images_per_fold // config.epochs} images/epoch"
    return [
        row(SECTION, case, HARNESS_METRIC, "images/s", harness),
        row(SECTION, case, "bare train step throughput (one in-memory batch)", "images/s", bare),
        row(
            SECTION,
            case,
            "harness / bare step",
            "ratio",
            [h / b for h, b in zip(harness, bare)],
            note="share of the step's throughput the harness keeps",
        ),
        row(SECTION, f"tf.matmul float32 {s['matmul']}x{s['matmul']}", "matmul rate", "GFLOP/s", matmul),
    ]


def one_fold_throughput(data: str, epochs: int) -> float:
    """Images/s of ``FoldRunner.run`` on fold 0 of the study profile (static), after one untimed run
    that builds and traces the model: what one seed process of ``dynamic-mtl study`` does per fold."""
    with tempfile.TemporaryDirectory(prefix="bench-harness-fold-") as work:
        runner, split, method, images = static_fold_runner("study", data, epochs, work)
        start = time.perf_counter()
        runner.run(method, split, resume=False)
        return images / (time.perf_counter() - start)


def _fold_processes(data: str, epochs: int, processes: int, threads: int | None) -> float:
    """Summed images/s of ``processes`` concurrent :func:`one_fold_throughput` processes with ``threads``
    TensorFlow threads each (None: TensorFlow's default, every core)."""
    env = dict(os.environ)
    if threads is not None:
        env.update(TF_NUM_INTRAOP_THREADS=str(threads), TF_NUM_INTEROP_THREADS=str(threads))
    command = [sys.executable, "-m", "benchmarks.harness", "--data", data, "--one-fold", str(epochs)]
    children = [subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True) for _ in range(processes)]
    rates = []
    for child in children:
        out, _ = child.communicate()
        if child.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed (exit {child.returncode})")
        rates.append(json.loads(out.strip().splitlines()[-1])["images_per_second"])
    return sum(rates)


def side_by_side(data: str, s: dict) -> list[dict]:
    """One fold of the study profile: one process on every core, then two single-threaded processes at once."""
    one, two = [], []
    for _ in range(s["repeats"]):
        one.append(_fold_processes(data, s["epochs"], 1, None))
        two.append(_fold_processes(data, s["epochs"], 2, 1))
    cores = os.cpu_count()
    case = f"small_cnn width 16, 32 px, batch 32, {s['epochs']} epochs, {cores} cores"
    return [
        row(SIDE_BY_SIDE, case, "one process, every core", "images/s", one),
        row(SIDE_BY_SIDE, case, "two processes side by side, one thread each (sum)", "images/s", two),
        row(
            SIDE_BY_SIDE,
            case,
            "side by side / one process",
            "ratio",
            [b / a for a, b in zip(one, two)],
            note="speed-up of `dynamic-mtl study --jobs 2` over --jobs 1",
        ),
    ]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=None, help="a prepared synthfaces directory (default: prepare one)")
    p.add_argument("--one-fold", type=int, metavar="EPOCHS", help=argparse.SUPPRESS)  # a side-by-side child
    a = p.parse_args(argv)
    if a.one_fold:
        print(json.dumps({"images_per_second": one_fold_throughput(a.data, a.one_fold)}), flush=True)
        return 0
    with tempfile.TemporaryDirectory(prefix="bench-harness-") as work:
        data = a.data or prepare_data(settings(), work)
        rows = bench(data, work)
        if not tiny_mode():
            rows += side_by_side(data, settings())
    emit(rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
