"""MultiWorkerMirroredStrategy with 2 worker processes on localhost.

``python -m benchmarks.multiworker`` (the orchestrator):

1. runs one process with the default strategy (one worker, one device) for ``steps`` steps at
   global batch ``B`` and saves its initial and final weights;
2. starts 2 worker processes with ``TF_CONFIG = {"cluster": {"worker": ["127.0.0.1:P0",
   "127.0.0.1:P1"]}, "task": {"type": "worker", "index": i}}`` (free ports picked here), each
   building the model inside ``MultiWorkerMirroredStrategy().scope()`` from the same initial
   weights and training on its half of every global batch
   (``strategy.distribute_datasets_from_function``), so the 2 replicas together see exactly the
   one-worker batches;
3. compares every worker's final weights with the one-worker run and reports step times.

``python -m benchmarks.multiworker worker --index i --ports P0,P1 --workdir DIR`` is one worker.
On a real cluster each machine runs the same training script with its own ``TF_CONFIG``
(see docs/performance.md).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import ROOT, child_env, emit, row, tiny_mode

IMAGE_SIZE = 24
GLOBAL_BATCH = 16
NUM_IDS, NUM_EXPR = 5, 4


def free_ports(count: int) -> list[int]:
    """``count`` distinct TCP ports free on 127.0.0.1 right now (raises OSError if none can be bound)."""
    sockets, ports = [], []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
            ports.append(s.getsockname()[1])
    finally:
        for s in sockets:
            s.close()
    return ports


def make_arrays(steps: int):
    import numpy as np

    rng = np.random.default_rng(0)
    n = GLOBAL_BATCH * steps
    x = rng.normal(size=(n, IMAGE_SIZE, IMAGE_SIZE, 3)).astype("float32")
    y = {
        "identity": rng.integers(0, NUM_IDS, n).astype("int32"),
        "expression": rng.integers(0, NUM_EXPR, n).astype("int32"),
    }
    return x, y


def build_model(weighting: str):
    import keras

    import dynamic_mtl as dm

    keras.utils.set_random_seed(0)
    return dm.build_face_expression_model(
        NUM_IDS,
        NUM_EXPR,
        backbone="small_cnn",
        image_size=IMAGE_SIZE,
        weighting=weighting,
        dropout_rate=0.0,
        embedding_size=16,
        center_loss_weight=0.1,
        synchronized_batchnorm=True,
    )


def compile_model(model):
    import keras

    import dynamic_mtl as dm

    model.compile(
        network_optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
        weight_optimizer=dm.default_weight_optimizer(),
        jit_compile=False,
    )


def train(
    strategy, dataset, steps: int, weighting: str, initial_path: Path | None, out_path: Path, timed_steps: int
) -> dict:
    import numpy as np

    from benchmarks.train_step import phase_timer

    with strategy.scope():
        model = build_model(weighting)
        if initial_path is not None:
            model.set_weights(list(np.load(initial_path, allow_pickle=False).values()))
        compile_model(model)
    initial = [w.copy() for w in model.get_weights()]
    t0 = time.perf_counter()
    model.fit(dataset, epochs=1, steps_per_epoch=steps, verbose=0)
    train_seconds = time.perf_counter() - t0
    final = model.get_weights()
    timer = phase_timer("train_batch")
    if timed_steps:
        model.fit(dataset, epochs=1, steps_per_epoch=timed_steps, verbose=0, callbacks=[timer])
    np.savez(out_path, *final)
    return {
        "initial": initial,
        "train_seconds": train_seconds,
        "step_seconds": timer.seconds,
        "trainable": [v.trainable for v in model.weights],
        "replicas": strategy.num_replicas_in_sync,
    }


def run_single(workdir: Path, steps: int, weighting: str, timed_steps: int) -> dict:
    import numpy as np
    import tensorflow as tf

    x, y = make_arrays(steps)
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(GLOBAL_BATCH).repeat()
    result = train(tf.distribute.get_strategy(), dataset, steps, weighting, None, workdir / "single.npz", timed_steps)
    np.savez(workdir / "initial.npz", *result["initial"])
    json.dump(
        {"step_seconds": result["step_seconds"], "trainable": result["trainable"]}, open(workdir / "single.json", "w")
    )
    return result


def run_worker(
    index: int,
    ports: list[int],
    workdir: Path,
    steps: int,
    weighting: str,
    timed_steps: int,
    input_mode: str = "function",
) -> None:
    os.environ["TF_CONFIG"] = json.dumps(
        {"cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]}, "task": {"type": "worker", "index": index}}
    )
    import tensorflow as tf

    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    x, y = make_arrays(steps)
    workers = len(ports)

    def dataset_fn(context: tf.distribute.InputContext):
        # This worker's slice of every global batch: the workers' slices concatenated are the batch.
        per_worker = GLOBAL_BATCH // context.num_input_pipelines
        w = context.input_pipeline_id
        sl = lambda a: a.reshape(steps, GLOBAL_BATCH, *a.shape[1:])[:, w * per_worker : (w + 1) * per_worker]  # noqa
        xs = sl(x).reshape(-1, *x.shape[1:])
        ys = {k: sl(v).reshape(-1) for k, v in y.items()}
        return tf.data.Dataset.from_tensor_slices((xs, ys)).batch(per_worker).repeat()

    assert GLOBAL_BATCH % workers == 0
    if input_mode == "auto":  # what `dynamic-mtl run --strategy multiworker` does: fit() distributes
        dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(GLOBAL_BATCH).repeat()
    else:
        dataset = strategy.distribute_datasets_from_function(dataset_fn)
    result = train(
        strategy, dataset, steps, weighting, workdir / "initial.npz", workdir / f"worker{index}.npz", timed_steps
    )
    json.dump(
        {
            "step_seconds": result["step_seconds"],
            "replicas": result["replicas"],
            "train_seconds": result["train_seconds"],
        },
        open(workdir / f"worker{index}.json", "w"),
    )


def compare(workdir: Path, workers: int) -> dict:
    """Relative difference of each worker's final weights from the one-worker run."""
    import numpy as np

    trainable = json.load(open(workdir / "single.json"))["trainable"]
    flat = lambda f: [np.ravel(a) for a in np.load(f, allow_pickle=False).values()]  # noqa: E731
    init, single = flat(workdir / "initial.npz"), flat(workdir / "single.npz")
    pick = lambda arrays: np.concatenate([a for a, t in zip(arrays, trainable) if t])  # noqa: E731
    movement = float(np.linalg.norm(pick(single) - pick(init)))
    report = {"movement": movement}
    for i in range(workers):
        other = flat(workdir / f"worker{i}.npz")
        diff = pick(other) - pick(single)
        report[f"worker{i}"] = {
            "relative_diff": float(np.linalg.norm(diff)) / movement,
            "share_off": float(np.mean(np.abs(diff) > 1e-5)),
            # non-trainable state too (batch-norm moving statistics, center-loss centers, step log)
            "max_abs_diff_all": float(max(np.max(np.abs(a - b)) for a, b in zip(other, single))),
        }
    return report


def launch(
    workdir: Path,
    steps: int,
    weighting: str,
    timed_steps: int,
    workers: int = 2,
    timeout: float = 900,
    retries: int = 2,
    input_mode: str = "function",
) -> dict:
    """Run the single-worker reference, then ``workers`` MWMS processes; returns ``compare`` + timings."""
    env = child_env(CUDA_VISIBLE_DEVICES="")
    env.pop("TF_CONFIG", None)
    common = [
        "--steps",
        str(steps),
        "--weighting",
        weighting,
        "--timed-steps",
        str(timed_steps),
        "--workdir",
        str(workdir),
    ]
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.multiworker", "single", *common],
        cwd=str(ROOT),
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if out.returncode != 0:
        raise RuntimeError(f"single-worker run failed:\n{out.stderr[-3000:]}")
    last_error = ""
    for attempt in range(retries + 1):
        ports = free_ports(workers)
        logs = [open(workdir / f"worker{i}.log", "w") for i in range(workers)]
        procs = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "benchmarks.multiworker",
                    "worker",
                    "--index",
                    str(i),
                    "--ports",
                    ",".join(map(str, ports)),
                    "--input",
                    input_mode,
                    *common,
                ],
                cwd=str(ROOT),
                env=env,
                stdout=logs[i],
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            for i in range(workers)
        ]
        deadline = time.monotonic() + timeout
        failed = False
        for proc in procs:
            try:
                proc.wait(timeout=max(1.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                failed = True
                break
            failed = failed or proc.returncode != 0
        for proc in procs:  # never leave a worker behind (a peer that died leaves the other waiting)
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        for log in logs:
            log.close()
        if not failed:
            break
        last_error = "\n".join((workdir / f"worker{i}.log").read_text()[-2500:] for i in range(workers))
        if "address already in use" not in last_error.lower() and attempt >= 1:
            raise RuntimeError(f"multi-worker run failed (ports {ports}):\n{last_error}")
    else:
        raise RuntimeError(f"multi-worker run failed after {retries + 1} attempts:\n{last_error}")
    report = compare(workdir, workers)
    report["single_step_seconds"] = json.load(open(workdir / "single.json"))["step_seconds"]
    for i in range(workers):
        info = json.load(open(workdir / f"worker{i}.json"))
        report[f"worker{i}"].update(step_seconds=info["step_seconds"], replicas=info["replicas"])
    return report


def bench() -> list[dict]:
    import statistics

    steps = 3 if tiny_mode() else 6
    timed = 2 if tiny_mode() else 8
    section = (
        f"MultiWorkerMirroredStrategy, 2 workers on 127.0.0.1 (small_cnn {IMAGE_SIZE} px, "
        f"global batch {GLOBAL_BATCH}, weighting=dynamic)"
    )
    rows = []
    modes = ("auto",) if tiny_mode() else ("auto", "function")
    for mode in modes:
        report = launch(
            Path(tempfile.mkdtemp(prefix=f"bench_multiworker_{mode}_")), steps, "dynamic", timed, input_mode=mode
        )
        label = (
            "fit() distributes the global-batch dataset"
            if mode == "auto"
            else "distribute_datasets_from_function, half of each batch per worker"
        )
        if mode == modes[0]:
            rows.append(
                row(
                    section,
                    "1 worker (default strategy)",
                    "throughput",
                    "images/s",
                    [GLOBAL_BATCH / t for t in report["single_step_seconds"]],
                )
            )
            rows.append(
                row(
                    section,
                    "2 workers",
                    "throughput",
                    "images/s",
                    [GLOBAL_BATCH / t for t in report["worker0"]["step_seconds"]],
                    note="both workers share the 2 cores; run after the 1-worker run, not interleaved",
                )
            )
            rows.append(
                row(
                    section,
                    "2 workers vs 1 worker",
                    "median step time ratio",
                    "ratio",
                    value=statistics.median(report["worker0"]["step_seconds"])
                    / statistics.median(report["single_step_seconds"]),
                )
            )
        worst = max(report[f"worker{i}"]["relative_diff"] for i in range(2))
        rows.append(
            row(
                section,
                f"2 workers vs 1 worker ({label})",
                f"weight difference after {steps} steps",
                "relative",
                value=worst,
                target="< 1e-3",
                note="||w_2 - w_1|| / ||w_1 - w_0||, worst worker",
            )
        )
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("mode", nargs="?", default="bench", choices=("bench", "single", "worker", "launch"))
    p.add_argument("--index", type=int, default=0)
    p.add_argument("--ports", default="")
    p.add_argument("--workdir", default=None)
    p.add_argument("--steps", type=int, default=6)
    p.add_argument("--timed-steps", type=int, default=0)
    p.add_argument("--weighting", default="dynamic")
    p.add_argument(
        "--input",
        default="function",
        choices=("function", "auto"),
        help="function: distribute_datasets_from_function, each worker its half of every global batch; "
        "auto: every worker gets the global-batch dataset and fit() distributes it",
    )
    a = p.parse_args(argv)
    if a.mode == "bench":
        emit(bench())
        return 0
    workdir = Path(a.workdir or tempfile.mkdtemp(prefix="multiworker_"))
    workdir.mkdir(parents=True, exist_ok=True)
    if a.mode == "single":
        run_single(workdir, a.steps, a.weighting, a.timed_steps)
    elif a.mode == "worker":
        run_worker(a.index, [int(p) for p in a.ports.split(",")], workdir, a.steps, a.weighting, a.timed_steps, a.input)
        sys.stdout.flush()
        os._exit(0)  # skip interpreter teardown: a collective runtime can hang at exit
    else:
        print(json.dumps(launch(workdir, a.steps, a.weighting, a.timed_steps, input_mode=a.input)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
