"""MirroredStrategy on 2 logical CPU devices gives the same weights as one device."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

#: float32 sums in a different order (per-replica partial sums, all-reduce) differ by
#: round-off only. After 4 steps the two runs' weights differ by less than 1e-3 of the
#: distance training moved them (seen: 2e-7 to 1.1e-4), and fewer than 1 in 100 weights
#: differ by more than 1e-5 (seen: 0 to 0.14%; round-off can flip a ReLU or max-pool
#: tie, which then moves a few elements by a step). A port that computes L3 and w
#: from per-replica losses instead of global ones gives 0.1 and 92% on the same check.
RELATIVE_TOLERANCE = 1e-3
SHARE_OFF_TOLERANCE = 1e-2


@pytest.mark.slow
def test_mirrored_two_replicas_match_one_device():
    weightings = ["dynamic", "dynamic:nostop", "naive_dynamic", "uncertainty", "gradnorm", "dwa", "static"]
    script = Path(__file__).with_name("mirrored_equivalence.py")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    out = subprocess.run(
        [sys.executable, str(script), *weightings], capture_output=True, text=True, env=env, timeout=600
    )
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads(out.stdout.strip().splitlines()[-1])
    for name in weightings:
        assert report[name]["steps_logged"] == 4, report[name]
        assert report[name]["movement"] > 1e-2, report[name]  # training really happened
        assert report[name]["relative_diff"] < RELATIVE_TOLERANCE, (name, report[name])
        assert report[name]["share_off"] < SHARE_OFF_TOLERANCE, (name, report[name])


def _missing_cpu() -> str:
    import tensorflow as tf

    return f"/cpu:{len(tf.config.list_logical_devices('CPU'))}"  # one past the last logical CPU


def test_make_strategy_rejects_a_device_that_does_not_exist():
    import dynamic_mtl as dm

    with pytest.raises(ValueError, match="does not exist"):
        dm.make_strategy("mirrored", devices=["/cpu:0", _missing_cpu()])


def test_fit_under_a_strategy_with_a_missing_device_raises_instead_of_hanging(tiny_batch):
    """Both replicas would run on /cpu:0 and wait forever in the step's first all-reduce."""
    import keras
    import tensorflow as tf
    from conftest import small_model

    x, y = tiny_batch
    strategy = tf.distribute.MirroredStrategy(devices=["/cpu:0", _missing_cpu()])
    assert strategy.num_replicas_in_sync == 2  # TensorFlow accepts the device it does not have
    with strategy.scope():
        model = small_model("rlw")
        model.compile(network_optimizer=keras.optimizers.SGD(0.01))
    with pytest.raises(ValueError, match="does not exist"):
        model.fit(x, y, batch_size=8, epochs=1, verbose=0)
