"""The cost of the two-tape train step, and XLA on/off.

Compares, on the same batch, device and ``jit_compile`` setting:

* ``plain``: a plain ``keras.Model`` over the same functional network, compiled with the
  standard loss sum ``0.5 CE_id + 0.5 alpha center + 0.5 CE_expr`` (the center loss is a
  ``keras.losses.Loss`` that also moves the centers, as ``CenterLoss.update`` does) and the
  same accuracy metrics, trained by ``keras.Model.fit``;
* ``DynamicMultiTaskModel`` with each weighting (``static`` is the same maths as ``plain``).

Each variant is traced and warmed up by a short ``fit``. Then, round by round, every variant
runs one step of the compiled train function ``fit`` runs (``model.train_function``; the logs
are converted to Python numbers after it, as ``fit`` does), in a rotating order; the ratio to
``plain`` is taken within each round, for wall time and for process CPU time (all threads; far
less disturbed by other jobs on a shared machine).

Also: host round trips per step during ``fit`` (``--part syncs``), the cost of a ``StepLogger``
flush, ``jit_compile`` True vs False (``--part xla``) and the losses with and without XLA
(``--part xla-agreement``).

    python -m benchmarks.train_step [--part weightings|xla|syncs|xla-agreement]
                                    [--backbone small_cnn|inception_resnet_v1_reduced] [--jit false|true]
"""

from __future__ import annotations

import argparse
import threading
import time

from benchmarks.common import emit, quick_mode, row, tiny_mode
from experiments.optimizers import AUTHORS_RMSPROP, make_optimizer

WEIGHTINGS = ("static", "dynamic", "naive_dynamic", "uncertainty", "gradnorm", "dwa")
CENTER_ALPHA = 1e-4  # paper value


def settings(backbone: str) -> dict:
    """Sizes per mode: ``rounds`` rounds of one step of every variant."""
    quick, tiny = quick_mode(), tiny_mode()
    if backbone == "small_cnn":
        if tiny:
            return dict(image_size=32, batch=8, rounds=2, warmup=1)
        if quick:
            return dict(image_size=64, batch=32, rounds=15, warmup=2)
        return dict(image_size=64, batch=32, rounds=30, warmup=3)
    if tiny:
        return dict(image_size=75, batch=2, rounds=1, warmup=1)
    if quick:
        return dict(image_size=160, batch=8, rounds=5, warmup=1)
    return dict(image_size=160, batch=8, rounds=10, warmup=2)


def _plain_center_loss(num_classes: int, dim: int, alpha: float):
    import keras

    from dynamic_mtl.losses import CenterLoss

    class PlainCenterLoss(keras.losses.Loss):
        """alpha * ||e - c_y||^2 per sample, moving the centers like ``CenterLoss.update``."""

        def __init__(self):
            super().__init__(name="center_loss")
            self.layer = CenterLoss(num_classes, dim, update_rate=0.5, name="plain_centers")
            self.layer.build()

        def call(self, y_true, y_pred):
            per_sample = self.layer.per_sample(y_pred, y_true)
            self.layer.update(y_pred, y_true)
            return alpha * per_sample

    return PlainCenterLoss()


def build(
    kind: str, backbone: str, image_size: int, num_ids: int, num_expr: int, jit: bool, steps_per_execution: int = 1
):
    """``kind`` is ``plain`` or a weighting name; returns ``(model, y_format)``."""
    import keras

    import dynamic_mtl as dm

    keras.utils.set_random_seed(0)
    optimizer = make_optimizer("RMSprop", 1e-4, AUTHORS_RMSPROP)
    if kind == "plain":
        net = dm.build_face_expression_network(num_ids, num_expr, backbone=backbone, image_size=image_size)
        keys = ("identity_logits", "embedding", "expression_logits")
        model = keras.Model(net.inputs, {k: net.output[k] for k in keys}, name="plain")
        ce = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        center = _plain_center_loss(num_ids, net.output["embedding"].shape[-1], CENTER_ALPHA)
        model.compile(
            optimizer=optimizer,
            loss={"identity_logits": ce, "embedding": center, "expression_logits": ce},
            loss_weights={"identity_logits": 0.5, "embedding": 0.5, "expression_logits": 0.5},
            metrics={
                "identity_logits": ["sparse_categorical_accuracy"],
                "expression_logits": ["sparse_categorical_accuracy"],
            },
            jit_compile=jit,
            steps_per_execution=steps_per_execution,
        )
        return model, "plain"
    model = dm.build_face_expression_model(
        num_ids, num_expr, backbone=backbone, image_size=image_size, weighting=kind, center_loss_weight=CENTER_ALPHA
    )
    model.compile(
        network_optimizer=optimizer,
        weight_optimizer=dm.default_weight_optimizer(),
        jit_compile=jit,
        steps_per_execution=steps_per_execution,
    )
    return model, "tasks"


def make_data(batch: int, image_size: int, num_ids: int, num_expr: int, y_format: str):
    import numpy as np
    import tensorflow as tf

    rng = np.random.default_rng(0)
    x = rng.normal(size=(batch, image_size, image_size, 3)).astype("float32")
    ids = rng.integers(0, num_ids, batch).astype("int32")
    expr = rng.integers(0, num_expr, batch).astype("int32")
    if y_format == "plain":
        y = {"identity_logits": ids, "embedding": ids, "expression_logits": expr}
    else:
        y = {"identity": ids, "expression": expr}
    return tf.data.Dataset.from_tensors((x, y)).repeat()


def phase_timer(phase: str):
    """A Keras callback whose ``seconds`` lists the wall time of every ``phase``: ``"epoch"``
    (``on_epoch_begin`` -> ``on_epoch_end``) or ``"train_batch"`` (one training step).

    With the TensorFlow backend Keras calls batch callbacks synchronously after converting the
    step's logs to Python numbers (``backend.IS_THREAD_SAFE`` is False), so timing steps adds
    no host synchronisation that ``fit`` does not already do.
    """
    import keras

    if phase not in ("epoch", "train_batch"):
        raise ValueError(f"phase must be 'epoch' or 'train_batch', got {phase!r}")

    class PhaseTimer(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.seconds = []
            self._t0 = None

        def _begin(self, this_phase):
            if this_phase == phase:
                self._t0 = time.perf_counter()

        def _end(self, this_phase):
            if this_phase == phase:
                self.seconds.append(time.perf_counter() - self._t0)

        def on_epoch_begin(self, epoch, logs=None):
            self._begin("epoch")

        def on_epoch_end(self, epoch, logs=None):
            self._end("epoch")

        def on_train_batch_begin(self, batch, logs=None):
            self._begin("train_batch")

        def on_train_batch_end(self, batch, logs=None):
            self._end("train_batch")

    return PhaseTimer()


class Variant:
    """One model + its batch, traced by a short ``fit``, then stepped one step at a time.

    ``step()`` calls the compiled train function that ``fit`` runs (``model.train_function``)
    once and converts its logs to Python floats, as ``fit`` does after every step with the
    TensorFlow backend; so it costs what one ``fit`` step costs, minus the callbacks.
    """

    def __init__(
        self, name, kind, backbone, image_size, batch, num_ids, num_expr, jit, warmup=2, steps_per_execution=1
    ):
        self.name, self.kind, self.jit, self.batch = name, kind, jit, batch
        self.model, fmt = build(kind, backbone, image_size, num_ids, num_expr, jit, steps_per_execution)
        self.data = make_data(batch, image_size, num_ids, num_expr, fmt)
        count_traces(self.model)
        t0 = time.perf_counter()
        self.model.fit(self.data, epochs=1, steps_per_epoch=warmup, verbose=0)
        self.warmup_seconds = time.perf_counter() - t0
        self.iterator = iter(self.data)
        self.function = self.model.train_function

    @property
    def traces(self) -> int:
        """How often ``train_step`` was traced so far (Python runs it only when tracing)."""
        return getattr(self.model, "_bench_traces", 0)

    def step(self) -> tuple[float, float]:
        """Wall and process-CPU seconds of one training step."""
        w0, c0 = time.perf_counter(), time.process_time()
        logs = self.function(self.iterator)
        {k: float(v) for k, v in logs.items()}  # noqa: B018  the host read fit does after each step
        return time.perf_counter() - w0, time.process_time() - c0


def count_traces(model):
    """Wrap ``model.train_step`` so that tracing it is counted (Python runs it only when tracing)."""
    original = model.train_step

    def counted(data):
        model._bench_traces = getattr(model, "_bench_traces", 0) + 1
        return original(data)

    model.train_step = counted
    return model


def measure(variants: list[Variant], rounds: int) -> dict:
    """``rounds`` rounds of one step of every variant (rotating order); wall and CPU seconds."""
    wall = {v.name: [] for v in variants}
    cpu = {v.name: [] for v in variants}
    for r in range(rounds):
        k = r % len(variants)
        for v in variants[k:] + variants[:k]:
            w, c = v.step()
            wall[v.name].append(w)
            cpu[v.name].append(c)
    return {"wall": wall, "cpu": cpu}


def ratio_rows(section, times, baseline, target=""):
    """Per-round ratios to ``baseline`` (wall and CPU time), summarised."""
    rows = []
    for name in times["wall"]:
        if name == baseline:
            continue
        for kind, label in (("wall", "step time"), ("cpu", "CPU time")):
            ratios = [a / b for a, b in zip(times[kind][name], times[kind][baseline])]
            rows.append(
                row(
                    section,
                    name,
                    f"{label} / {baseline}",
                    "ratio",
                    ratios,
                    target=target if name == "dynamic" and kind == "wall" else "",
                )
            )
    return rows


def step_rows(section, variants, times):
    rows = []
    for v in variants:
        rows.append(
            row(
                section,
                v.name,
                "step time",
                "ms",
                [1000 * t for t in times["wall"][v.name]],
                note=f"train_step traced {v.traces}x in {len(times['wall'][v.name])} + warm-up steps",
            )
        )
        rows.append(row(section, v.name, "throughput", "images/s", [v.batch / t for t in times["wall"][v.name]]))
    return rows


def bench_weightings(backbone: str, jit: bool) -> list[dict]:
    """Every weighting vs plain fit at one backbone, one jit setting."""
    s = settings(backbone)
    num_ids, num_expr = (100, 7) if backbone != "small_cnn" else (40, 7)
    section = f"train step ({backbone}, {s['image_size']} px, batch {s['batch']}, jit_compile={jit})"
    common = (backbone, s["image_size"], s["batch"], num_ids, num_expr, jit, s["warmup"])
    variants = [Variant("plain", "plain", *common)] + [Variant(w, w, *common) for w in WEIGHTINGS]
    times = measure(variants, s["rounds"])
    rows = step_rows(section, variants, times)
    rows += ratio_rows(section, times, "plain", target="<= 1.05")
    return rows


def bench_xla(backbone: str) -> list[dict]:
    """jit_compile True vs False, plain and dynamic, timed interleaved."""
    s = settings(backbone)
    num_ids, num_expr = (100, 7) if backbone != "small_cnn" else (40, 7)
    section = f"XLA ({backbone}, {s['image_size']} px, batch {s['batch']})"
    variants = [
        Variant(f"{kind} jit={jit}", kind, backbone, s["image_size"], s["batch"], num_ids, num_expr, jit, s["warmup"])
        for kind in ("plain", "dynamic")
        for jit in (False, True)
    ]
    times = measure(variants, s["rounds"])
    rows = step_rows(section, variants, times)
    for v in variants:
        rows.append(row(section, v.name, "first fit (trace + compile + warm-up steps)", "s", value=v.warmup_seconds))
    for kind in ("plain", "dynamic"):
        ratios = [a / b for a, b in zip(times["wall"][f"{kind} jit=True"], times["wall"][f"{kind} jit=False"])]
        rows.append(row(section, kind, "step time jit=True / jit=False", "ratio", ratios, note="< 1: XLA faster"))
    ratios = [a / b for a, b in zip(times["wall"]["dynamic jit=True"], times["wall"]["plain jit=True"])]
    rows.append(row(section, "dynamic jit=True", "step time / plain jit=True", "ratio", ratios, target="<= 1.05"))
    return rows


def xla_loss_agreement(
    steps: int = 5, backbone: str = "small_cnn", image_size: int = 32, batch: int = 16, weighting: str = "dynamic"
) -> dict:
    """Train the same model from the same weights with and without XLA; compare the step logs.

    Dropout is off (the two compilers draw different random masks). Returns the per-step task
    losses and weights of both runs and their largest absolute / relative differences.
    """
    import keras
    import numpy as np
    import tensorflow as tf

    import dynamic_mtl as dm

    rng = np.random.default_rng(0)
    x = rng.normal(size=(batch * steps, image_size, image_size, 3)).astype("float32")
    y = {
        "identity": rng.integers(0, 5, batch * steps).astype("int32"),
        "expression": rng.integers(0, 4, batch * steps).astype("int32"),
    }
    logs, initial = {}, None
    for jit in (False, True):
        keras.utils.set_random_seed(0)
        model = dm.build_face_expression_model(
            5,
            4,
            backbone=backbone,
            image_size=image_size,
            weighting=weighting,
            dropout_rate=0.0,
            embedding_size=16,
            center_loss_weight=0.1,
        )
        if initial is None:
            initial = model.get_weights()
        model.set_weights(initial)
        model.compile(
            network_optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
            weight_optimizer=dm.default_weight_optimizer(),
            jit_compile=jit,
        )
        model.fit(tf.data.Dataset.from_tensor_slices((x, y)).batch(batch), epochs=1, verbose=0)
        log = model.step_log.numpy()[:steps]
        fields = list(model.log_fields)
        cols = [i for i, f in enumerate(fields) if f.startswith(("loss_", "w_")) or f == "network_loss"]
        logs[jit] = log[:, cols]
    diff = np.abs(logs[True] - logs[False])
    return {
        "fields": [fields[i] for i in cols],
        "no_xla": logs[False].tolist(),
        "xla": logs[True].tolist(),
        "max_abs_diff": float(diff.max()),
        "max_rel_diff": float((diff / np.maximum(np.abs(logs[False]), 1e-6)).max()),
    }


def count_host_round_trips(
    steps: int = 16, steps_per_execution: int = 1, logger_every: int = 0, model_kind: str = "dynamic"
) -> dict:
    """How often the training thread waits for the device during ``fit(verbose=0)``.

    Counts (a) ``train_function`` calls (each ends with Keras's ``has_value()`` check, a host
    read) and (b) conversions of the logs to Python numbers on the training thread (with the
    TensorFlow backend Keras does one after every ``train_function`` call, whatever the callbacks).
    """
    import tempfile

    from keras.src.callbacks import callback_list
    from keras.src.utils import python_utils

    import dynamic_mtl as dm

    main = threading.get_ident()
    counts = {"pythonify_on_training_thread": 0, "train_function_calls": 0}
    original = python_utils.pythonify_logs

    def counting(logs):
        if threading.get_ident() == main and logs:
            counts["pythonify_on_training_thread"] += 1
        return original(logs)

    model, fmt = build(model_kind, "small_cnn", 24, 5, 4, False, steps_per_execution)
    data = make_data(4, 24, 5, 4, fmt)
    callbacks = []
    if logger_every:
        callbacks.append(dm.StepLogger(f"{tempfile.mkdtemp(prefix='bench_sync_')}/steps.csv", flush_every=logger_every))
    model.fit(data, epochs=1, steps_per_epoch=steps_per_execution, verbose=0)  # trace
    fn = model.train_function

    def counted(iterator):
        counts["train_function_calls"] += 1
        return fn(iterator)

    model.train_function = counted
    callback_list.python_utils.pythonify_logs = counting
    try:
        model.fit(data, epochs=1, steps_per_epoch=steps, verbose=0, callbacks=callbacks)
    finally:
        callback_list.python_utils.pythonify_logs = original
        model.train_function = fn
    return {**counts, "steps": steps, "steps_per_execution": steps_per_execution, "logger_every": logger_every}


def steplogger_flush_cost(rows_per_flush: int = 256, repeats: int = 5) -> list[float]:
    """Seconds of one ``StepLogger.flush`` of ``rows_per_flush`` new rows (buffer copy + CSV)."""
    import tempfile

    import numpy as np

    import dynamic_mtl as dm

    model, _ = build("dynamic", "small_cnn", 24, 5, 4, False)
    logger = dm.StepLogger(f"{tempfile.mkdtemp(prefix='bench_flush_')}/steps.csv", flush_every=rows_per_flush)
    logger.set_model(model)
    logger.on_train_begin()
    seconds = []
    rows = np.zeros((model.log_capacity, len(model.log_fields)), np.float32)
    step = 0
    for _ in range(repeats):
        for _ in range(rows_per_flush):
            step += 1
            rows[(step - 1) % model.log_capacity] = step
        model.step_log.assign(rows)
        t0 = time.perf_counter()
        logger.flush()
        seconds.append(time.perf_counter() - t0)
    return seconds


def bench_syncs() -> list[dict]:
    section = "host round trips of fit(verbose=0), per 16 training steps"
    rows = []
    steps = 16
    for name, kind, spe, every in (
        ("plain keras fit", "plain", 1, 0),
        ("dynamic", "dynamic", 1, 0),
        ("dynamic + StepLogger(flush_every=8)", "dynamic", 1, 8),
        ("dynamic + StepLogger(8), steps_per_execution=8", "dynamic", 8, 8),
    ):
        c = count_host_round_trips(steps, spe, every, kind)
        rows.append(
            row(
                section,
                name,
                "train_function calls (each ends in a has_value() read)",
                "count",
                value=c["train_function_calls"],
            )
        )
        rows.append(
            row(
                section,
                name,
                "log conversions to Python on the training thread",
                "count",
                value=c["pythonify_on_training_thread"],
                note="includes 2 per epoch (epoch end)",
            )
        )
    flush = steplogger_flush_cost(256, 3 if quick_mode() or tiny_mode() else 5)
    rows.append(
        row(
            "StepLogger",
            "flush of 256 rows (buffer copy + CSV append)",
            "time",
            "ms",
            [1000 * t for t in flush],
            note="once per flush_every steps",
        )
    )
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--backbone", default="small_cnn", choices=("small_cnn", "inception_resnet_v1_reduced"))
    p.add_argument("--part", default="weightings", choices=("weightings", "xla", "syncs", "xla-agreement"))
    p.add_argument("--jit", default="false", choices=("false", "true"))
    a = p.parse_args(argv)
    if a.part == "weightings":
        rows = bench_weightings(a.backbone, a.jit == "true")
    elif a.part == "xla":
        rows = bench_xla(a.backbone)
    elif a.part == "syncs":
        rows = bench_syncs()
    else:
        agreement = xla_loss_agreement()
        rows = [
            row(
                "XLA correctness (small_cnn, 5 SGD steps, no dropout)",
                "dynamic",
                "max |loss_xla - loss|",
                "abs",
                value=agreement["max_abs_diff"],
            ),
            row(
                "XLA correctness (small_cnn, 5 SGD steps, no dropout)",
                "dynamic",
                "max relative difference",
                "rel",
                value=agreement["max_rel_diff"],
            ),
        ]
    emit(rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
