"""The 2-replica check of mirrored_equivalence.py for the weighting methods, with per-method
options and learning rate.

Run as a script with one JSON argument, a list of ``{"name", "options", "lr"}``; prints a JSON dict
name -> the same measures as mirrored_equivalence.py. Round-off between one device and two replicas
grows with the size of the steps: methods whose update is the *sum* of (adjusted) task gradients
(PCGrad, GradVac) use half the rate of the others, so that their steps are as large as those of
``static`` (0.5, 0.5) at 0.01 in mirrored_equivalence.py.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import mirrored_equivalence as base  # noqa: E402

import dynamic_mtl as dm  # noqa: E402

if __name__ == "__main__":
    # mirrored_equivalence only splits the CPU when run as a script itself: without two logical
    # CPUs a MirroredStrategy over "/cpu:0", "/cpu:1" puts both replicas on one device
    dm.use_logical_cpus(2)

# isort: split
import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402


def train(strategy, name, options, lr, initial, x, y):
    with strategy.scope():
        model = base.build(name, options)
        model.set_weights(initial)
        model.compile(
            network_optimizer=keras.optimizers.SGD(lr, momentum=0.9), weight_optimizer=dm.default_weight_optimizer()
        )
    # 4 steps in one epoch (a second epoch adds a new iterator and its set-up, not another kind of step)
    model.fit(tf.data.Dataset.from_tensor_slices((x, y)).batch(8), epochs=1, verbose=0)
    return [(v.path, v.numpy()) for v in model.variables if "seed_generator" not in v.path]


def main(specs):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 24, 24, 3)).astype("float32")
    y = {"identity": rng.integers(0, 5, 32).astype("int32"), "expression": rng.integers(0, 4, 32).astype("int32")}
    assert len(tf.config.list_logical_devices("CPU")) == 2
    mirrored = tf.distribute.MirroredStrategy(devices=["/cpu:0", "/cpu:1"])
    report = {}
    for spec in specs:
        name, options, lr = spec["name"], spec.get("options", {}), spec.get("lr", 0.01)
        initial = base.build(name, options).get_weights()
        one = train(tf.distribute.get_strategy(), name, options, lr, initial, x, y)
        two = train(mirrored, name, options, lr, initial, x, y)
        trainable = [(va, vb, v0) for (_, va), (_, vb), v0 in zip(one, two, initial) if va.shape == v0.shape]
        flat = lambda arrays: np.concatenate([np.ravel(a) for a in arrays])  # noqa: E731
        one_flat, two_flat, init_flat = (flat(t) for t in zip(*trainable))
        movement = float(np.linalg.norm(one_flat - init_flat))
        step_log = next(value for path, value in one if path.endswith("step_log"))
        report[name] = {
            "movement": movement,
            "relative_diff": float(np.linalg.norm(one_flat - two_flat)) / movement,
            "share_off": float(np.mean(np.abs(one_flat - two_flat) > 1e-5)),
            "steps_logged": float(step_log[:, 0].max()),
            "log_max_abs_diff": float(np.max(np.abs(step_log - next(v for p, v in two if p.endswith("step_log"))))),
        }
    print(json.dumps(report))


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
