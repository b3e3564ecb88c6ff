"""MirroredStrategy on 1, 2 and 4 logical CPU devices: throughput and equal results.

TensorFlow fixes its logical devices when it initialises, and strategies of different sizes
in one process collide on collective group keys, so every configuration runs in its own
process (``python -m benchmarks.scale child --devices N``), which splits the CPU into N
logical devices first. The parent runs the configurations in rounds, in a rotating order,
so the three are interleaved in time; the global batch is the same for all (the strategy
splits it).

Each child first trains ``steps`` steps from the same initial weights on the same batches
(SGD, synchronised batch norm, no dropout, as ``tests/mirrored_equivalence.py``) and saves
the weights (first round only), then times ``timed_steps`` more steps. The weights of 2 and 4
devices are compared with 1 device, and with a round-off reference: the 1-device run again
with ``TF_ENABLE_ONEDNN_OPTS=0`` (the same maths summed in another float32 order). Logical CPU devices share the machine's cores: the
throughput shows the cost of replication here, not a speed-up (on GPUs each replica has its
own device).

    python -m benchmarks.scale
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

from benchmarks.common import ROOT, child_env, emit, quick_mode, row, tiny_mode

DEVICE_COUNTS = (1, 2, 4)


#: The equality run uses the settings of tests/mirrored_equivalence.py (24 px, global batch 16),
#: where float32 round-off stays small; throughput is timed on a larger model and batch.
EQUALITY = dict(image_size=24, global_batch=16, steps=4)


def sizes() -> dict:
    tiny, quick = tiny_mode(), quick_mode()
    return dict(
        image_size=24 if tiny else 48,
        global_batch=8 if tiny else 32,
        timed_steps=2 if tiny else 6 if quick else 8,
        rounds=1 if tiny else 2 if quick else 3,
    )


def child(devices: int, workdir: Path, weighting: str, save: bool, tag: str = "", timed: bool = True) -> None:
    import dynamic_mtl as dm

    dm.use_logical_cpus(devices)
    import keras
    import numpy as np
    import tensorflow as tf

    from benchmarks.train_step import phase_timer

    s = sizes()
    strategy = tf.distribute.MirroredStrategy(devices=[f"/cpu:{i}" for i in range(devices)])

    def build(image_size):
        keras.utils.set_random_seed(0)
        return dm.build_face_expression_model(
            10,
            7,
            backbone="small_cnn",
            image_size=image_size,
            weighting=weighting,
            dropout_rate=0.0,
            embedding_size=16,
            center_loss_weight=0.1,
            synchronized_batchnorm=True,
        )

    def model_and_data(image_size, global_batch, steps):
        initial = build(image_size).get_weights()
        with strategy.scope():
            model = build(image_size)
            model.set_weights(initial)
            model.compile(
                network_optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
                weight_optimizer=dm.default_weight_optimizer(),
                jit_compile=False,
            )
        rng = np.random.default_rng(0)
        n = global_batch * steps
        x = rng.normal(size=(n, image_size, image_size, 3)).astype("float32")
        y = {"identity": rng.integers(0, 10, n).astype("int32"), "expression": rng.integers(0, 7, n).astype("int32")}
        return model, initial, x, y

    if save:
        e = EQUALITY
        model, initial, x, y = model_and_data(e["image_size"], e["global_batch"], e["steps"])
        model.fit(tf.data.Dataset.from_tensor_slices((x, y)).batch(e["global_batch"]), epochs=1, verbose=0)
        trainable = {v.path for v in model.trainable_variables}
        picked = [(w0, v.numpy()) for w0, v in zip(initial, model.weights) if v.path in trainable]
        np.savez(workdir / f"weights_{devices}{tag}.npz", *[w for _, w in picked])
        np.savez(workdir / "initial.npz", *[w0 for w0, _ in picked])
    timer = phase_timer("train_batch")
    if timed:
        gb = s["global_batch"]
        model, _, x, y = model_and_data(s["image_size"], gb, 1)
        timing_data = tf.data.Dataset.from_tensors((x, y)).repeat()
        model.fit(timing_data, epochs=1, steps_per_epoch=2, verbose=0)  # trace
        model.fit(timing_data, epochs=1, steps_per_epoch=s["timed_steps"], verbose=0, callbacks=[timer])
    print(
        "SCALE_JSON "
        + json.dumps({"devices": devices, "replicas": strategy.num_replicas_in_sync, "step_seconds": timer.seconds}),
        flush=True,
    )


def run_child(
    devices: int, workdir: Path, weighting: str, save: bool, tag: str = "", timed: bool = True, **env
) -> dict:
    import subprocess

    cmd = (
        [
            sys.executable,
            "-m",
            "benchmarks.scale",
            "child",
            "--devices",
            str(devices),
            "--workdir",
            str(workdir),
            "--weighting",
            weighting,
            "--tag",
            tag,
        ]
        + (["--save"] if save else [])
        + ([] if timed else ["--untimed"])
    )
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=str(ROOT), env=child_env(**env), timeout=1800)
    for line in out.stdout.splitlines():
        if line.startswith("SCALE_JSON "):
            return json.loads(line[len("SCALE_JSON ") :])
    raise RuntimeError(f"{' '.join(cmd)} failed ({out.returncode}):\n{out.stderr[-3000:]}")


def bench(weighting: str = "dynamic") -> list[dict]:
    import numpy as np

    s = sizes()
    workdir = Path(tempfile.mkdtemp(prefix="bench_scale_"))
    times = {n: [] for n in DEVICE_COUNTS}
    replicas = {}
    for r in range(s["rounds"]):
        k = r % len(DEVICE_COUNTS)
        for n in DEVICE_COUNTS[k:] + DEVICE_COUNTS[:k]:
            result = run_child(n, workdir, weighting, save=(r == 0))
            replicas[n] = result["replicas"]
            times[n].append(statistics.median(result["step_seconds"]))
    # Round-off reference: the same 1-device run with oneDNN's kernels off (other float32 summation
    # orders, same maths). Replicas must differ from 1 device by about as much, not more.
    run_child(1, workdir, weighting, save=True, tag="_reference", timed=False, TF_ENABLE_ONEDNN_OPTS="0")
    load = lambda f: np.concatenate([np.ravel(a) for a in np.load(f).values()])  # noqa: E731
    w0, w1 = load(workdir / "initial.npz"), load(workdir / "weights_1.npz")
    movement = float(np.linalg.norm(w1 - w0))
    reference = float(np.linalg.norm(load(workdir / "weights_1_reference.npz") - w1)) / movement
    section = (
        f"MirroredStrategy on logical CPUs (small_cnn, weighting={weighting}, one process per configuration; "
        f"throughput at {s['image_size']} px, global batch {s['global_batch']}; weights after "
        f"{EQUALITY['steps']} steps at {EQUALITY['image_size']} px, global batch {EQUALITY['global_batch']})"
    )
    rows = []
    for n in DEVICE_COUNTS:
        rows.append(
            row(
                section,
                f"{n} device(s)",
                "throughput",
                "images/s",
                [s["global_batch"] / t for t in times[n]],
                note=f"{replicas[n]} replica(s)",
            )
        )
        if n > 1:
            rows.append(
                row(
                    section,
                    f"{n} device(s)",
                    "step time / 1 device",
                    "ratio",
                    [t / b for t, b in zip(times[n], times[1])],
                )
            )
            diff = load(workdir / f"weights_{n}.npz") - w1
            rows.append(
                row(
                    section,
                    f"{n} device(s)",
                    "weight difference vs 1 device",
                    "relative",
                    value=float(np.linalg.norm(diff)) / movement,
                    target="< 1e-3",
                    note=f"||w_n - w_1|| / ||w_1 - w_0||; {100 * float(np.mean(np.abs(diff) > 1e-5)):.2f}% "
                    f"of weights off by > 1e-5; round-off reference {reference:.1e}",
                )
            )
    rows.append(
        row(
            section,
            "1 device, oneDNN off (round-off reference)",
            "weight difference vs 1 device",
            "relative",
            value=reference,
            note="the same maths with other float32 kernels",
        )
    )
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("mode", nargs="?", default="bench", choices=("bench", "child"))
    p.add_argument("--devices", type=int, default=1)
    p.add_argument("--workdir", default=None)
    p.add_argument("--weighting", default="dynamic")
    p.add_argument("--save", action="store_true")
    p.add_argument("--tag", default="")
    p.add_argument("--untimed", action="store_true")
    a = p.parse_args(argv)
    if a.mode == "child":
        child(a.devices, Path(a.workdir), a.weighting, a.save, a.tag, not a.untimed)
    else:
        emit(bench(a.weighting))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
