"""MirroredStrategy on 2 logical CPU devices gives the same weights as one device."""

from __future__ import annotations

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
@pytest.mark.xdist_group("mirrored_report")  # one worker runs the shared subprocess (tests/conftest.py)
def test_mirrored_two_replicas_match_one_device(mirrored_report):
    weightings = ["dynamic", "dynamic:nostop", "naive_dynamic", "uncertainty", "gradnorm", "dwa", "static"]
    for name in weightings:
        report = mirrored_report[name]
        assert report["steps_logged"] == 4, report
        assert report["movement"] > 1e-2, report  # training really happened
        assert report["relative_diff"] < RELATIVE_TOLERANCE, (name, report)
        assert report["share_off"] < SHARE_OFF_TOLERANCE, (name, report)


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


@pytest.mark.parametrize(
    "task, jobs, where",
    [
        (None, None, "out"),  # one process: no cluster
        (("chief", 0), {"chief", "worker"}, "out"),
        (("worker", 0), {"chief", "worker"}, "out/workers/worker-0"),
        (("worker", 0), {"worker"}, "out"),  # no chief task: worker 0 is the chief
        (("worker", 1), {"worker"}, "out/workers/worker-1"),
    ],
)
def test_only_the_chief_writes_the_run_directory(tmp_path, task, jobs, where):
    from types import SimpleNamespace

    from dynamic_mtl.distribute import is_chief, worker_directory

    if task is None:
        strategy = SimpleNamespace()
    else:
        spec = SimpleNamespace(jobs=sorted(jobs))
        resolver = SimpleNamespace(task_type=task[0], task_id=task[1], cluster_spec=lambda: spec)
        strategy = SimpleNamespace(cluster_resolver=resolver)
    assert worker_directory(strategy, tmp_path / "out") == tmp_path / where
    assert is_chief(strategy) == (where == "out")
