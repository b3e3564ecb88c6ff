"""``StepLogger``: per-step weights, losses, L3 and weight-unit gradient norm to CSV."""

from __future__ import annotations

import csv
import math
import os
import time

import keras
import numpy as np


class StepLogger(keras.callbacks.Callback):
    """Writes the model's on-device step log to a CSV (Figures 4, 5, 6 and 7 read it).

    The model writes one row per step into a device-side ring buffer
    (``DynamicMultiTaskModel.step_log``), so logging adds no device-to-host copy per
    step; this callback copies the buffer to the host every ``flush_every`` batches and
    at each epoch end. Columns: ``step, epoch, wall_time, w_<task>..., loss_<task>...,
    network_loss, weight_loss, weight_grad_norm, logit_<task>..., a_<task>...``
    (``a_i = exp(mean f_i)``, Section 5.5). ``wall_time`` is seconds since training
    began, interpolated between flushes.

    Resuming: when the file exists, the first ``fit`` keeps its rows up to the model's step
    counter (``train_step_count``, restored with the checkpoint) and appends from there, so rows
    flushed after the checkpoint that was restored (an interruption between a flush and the next
    checkpoint, a torn last line after a full disk) are dropped instead of duplicated, and
    ``wall_time`` continues from the last kept row; a fresh model (step 0) starts the file anew.
    With ``strict=True`` a file that is missing or ends before the model's step (rows lost) raises
    ``ValueError`` naming it (else logging starts at the current step, e.g. after a warm-up).

    ``summary_dir``: also write every row's weights ``w_i``, losses ``L_i``, ``network_loss``,
    ``weight_loss`` (L3, Eq. 6) and ``weight_grad_norm`` as TensorBoard scalars (tags
    ``step/<column>``, x axis: the step). The CSV is the record; after a resume TensorBoard may show
    the steps retrained since the last checkpoint twice.
    """

    def __init__(self, path: str, flush_every: int = 256, summary_dir: str | None = None, strict: bool = False):
        super().__init__()
        if flush_every < 1:
            raise ValueError("flush_every must be >= 1")
        self.path = str(path)
        self.flush_every = int(flush_every)
        self.summary_dir = None if summary_dir is None else str(summary_dir)
        self.strict = bool(strict)
        self._writer = None
        self._last_step = 0
        self._last_time = 0.0
        self._epoch = 0
        self._batches = 0
        self._start = None

    def on_train_begin(self, logs=None):
        capacity = self.model.log_capacity
        # one batch callback covers steps_per_execution training steps
        per_call = int(getattr(self.model, "steps_per_execution", 1) or 1)
        if self.flush_every * per_call > capacity:
            raise ValueError(
                f"flush_every={self.flush_every} x steps_per_execution={per_call} exceeds the "
                f"model's log_capacity={capacity}"
            )
        step = int(self.model.train_step_count.numpy())
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        if self._start is None:  # keep one clock across repeated fit() calls (epoch-by-epoch training)
            self._start = time.perf_counter() - truncate_step_log(self.path, step, strict=self.strict)
        self._last_time = time.perf_counter() - self._start
        self._last_step = step

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        self._batches += 1
        if self._batches % self.flush_every == 0:
            self.flush()

    def on_epoch_end(self, epoch, logs=None):
        self.flush()

    def on_train_end(self, logs=None):
        self.flush()

    def flush(self):
        """Copy the rows written since the last flush to the CSV."""
        buffer = np.asarray(self.model.step_log.numpy(), dtype=np.float64)
        now = time.perf_counter() - self._start
        steps = buffer[:, 0]
        fresh = buffer[steps > self._last_step]
        if not len(fresh):
            return
        fresh = fresh[np.argsort(fresh[:, 0])]
        first, last = fresh[0, 0], fresh[-1, 0]
        if first != self._last_step + 1:
            lost = int(first - self._last_step - 1)
            raise RuntimeError(f"{lost} step-log rows were overwritten: lower flush_every or raise log_capacity")
        fields = list(self.model.log_fields)
        task_names = [t.name for t in self.model.tasks]
        header = ["step", "epoch", "wall_time"] + fields[1:] + [f"a_{n}" for n in task_names]
        new_file = not os.path.exists(self.path) or os.path.getsize(self.path) == 0
        span = max(last - self._last_step, 1)
        with open(self.path, "a", newline="") as handle:
            writer = csv.writer(handle)
            if new_file:
                writer.writerow(header)
            for row in fresh:
                frac = (row[0] - self._last_step) / span
                wall = self._last_time + frac * (now - self._last_time)
                logits = row[-len(task_names) :]
                a_values = [math.exp(v) if v < 709 else math.inf for v in logits]
                writer.writerow(
                    [int(row[0]), self._epoch, f"{wall:.4f}"]
                    + [f"{v:.8g}" for v in row[1:]]
                    + [f"{v:.8g}" for v in a_values]
                )
            handle.flush()
            os.fsync(handle.fileno())  # on disk before any checkpoint that counts these steps
        if self.summary_dir is not None:
            self._write_summaries(fields, fresh)
        self._last_step = int(last)
        self._last_time = now

    def _write_summaries(self, fields: list[str], rows: np.ndarray) -> None:
        """Rows as TensorBoard scalars, with TensorFlow's core summary ops (no tensorboard package needed)."""
        import tensorflow as tf
        from tensorflow.core.framework import summary_pb2

        if self._writer is None:
            self._writer = tf.summary.create_file_writer(self.summary_dir)
        meta = summary_pb2.SummaryMetadata()
        meta.plugin_data.plugin_name = "scalars"
        meta = meta.SerializeToString()
        columns = [
            i
            for i, f in enumerate(fields)
            if f.startswith(("w_", "loss_")) or f in ("network_loss", "weight_loss", "weight_grad_norm")
        ]
        with self._writer.as_default():
            for row in rows:
                for i in columns:
                    tf.summary.write(
                        f"step/{fields[i]}", tf.constant(row[i], tf.float32), step=int(row[0]), metadata=meta
                    )
        self._writer.flush()


def truncate_step_log(path: str, step: int, strict: bool = True) -> float:
    """Keep the rows of the step-log CSV ``path`` up to ``step`` (and its header); drop later rows
    and a torn last line. Returns the last kept row's ``wall_time`` (0 when none).

    ``step == 0`` empties the file. ``strict``: raise ``ValueError`` when the file is missing or
    ends before ``step``.
    """
    if not os.path.exists(path):
        if step and strict:
            raise ValueError(
                f"step log {path} is missing but the model is at step {step}: its rows are lost (log to a new file)"
            )
        return 0.0
    with open(path, "rb") as handle:
        data = handle.read()
    header_end = data.find(b"\n") + 1
    keep, last_step, wall = header_end, 0, 0.0
    if header_end and step:
        position = header_end
        while position < len(data):
            end = data.find(b"\n", position)
            if end < 0:
                break  # a torn last line
            fields = data[position:end].split(b",", 3)
            try:
                row_step, row_wall = int(fields[0]), float(fields[2])
            except (ValueError, IndexError):
                break
            if row_step > step:
                break
            keep, last_step, wall = end + 1, row_step, row_wall
            position = end + 1
    if last_step != step and step and strict:
        raise ValueError(
            f"step log {path} ends at step {last_step} but the model is at step {step}: "
            f"{step - last_step} rows are lost (log to a new file)"
        )
    if keep != len(data):
        with open(path, "r+b") as handle:
            handle.truncate(keep)
            handle.flush()
            os.fsync(handle.fileno())
    return wall


class TrainingDiverged(RuntimeError):
    """A training loss became NaN or infinite. ``epoch`` and ``step`` are 1-based (``step`` counts the
    epoch's training steps), ``global_step`` counts every step of the model (as the ``step`` column of
    :class:`StepLogger`, None when the model does not count), ``values`` holds the losses seen."""

    def __init__(self, epoch: int, step: int, values: dict, global_step: int | None = None):
        self.epoch, self.step, self.global_step, self.values = int(epoch), int(step), global_step, dict(values)
        where = f"epoch {self.epoch} step {self.step}" + (
            f" (global step {global_step})" if global_step is not None else ""
        )
        shown = ", ".join(f"{k}={v:.6g}" for k, v in self.values.items())
        super().__init__(f"training diverged at {where}: {shown}")


class StopOnDivergence(keras.callbacks.Callback):
    """Raise :class:`TrainingDiverged` at the first non-finite training loss.

    Unlike ``keras.callbacks.TerminateOnNaN`` (which ends ``fit`` quietly), this raises, so a
    diverged model never reaches evaluation or a checkpoint. It reads the batch logs Keras already
    converts to Python numbers after each ``train_function`` call, so it adds no device read.
    Monitored: every log whose name contains ``"loss"`` (``loss``, each task loss L_i of Eq. (3),
    the weight unit's ``weight_loss`` L3 of Eq. (6)), or the names in ``monitor``. Logs are
    running means over the epoch, so the first non-finite step makes them non-finite at once. On a
    :class:`~dynamic_mtl.DynamicMultiTaskModel` the exact step and its own values come from the
    on-device step log (useful with ``steps_per_execution > 1``). It only reads, so it composes
    with any other callback (``ModelCheckpoint``, ``EarlyStopping``, ``TensorBoard``, ``StepLogger``).

    Example::

        try:
            model.fit(dataset, epochs=10, callbacks=[dm.StopOnDivergence(), dm.StepLogger("steps.csv")])
        except dm.TrainingDiverged as err:
            print(err.epoch, err.step, err.values)
    """

    def __init__(self, monitor: list[str] | tuple[str, ...] | None = None):
        super().__init__()
        self.monitor = tuple(monitor) if monitor is not None else None
        self._epoch = 0
        self._epoch_start_step = None

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch
        counter = getattr(self.model, "train_step_count", None)
        self._epoch_start_step = int(counter.numpy()) if counter is not None else None

    def on_train_batch_end(self, batch, logs=None):
        self._check(batch, logs)

    def on_epoch_end(self, epoch, logs=None):
        self._check(None, {k: v for k, v in (logs or {}).items() if not str(k).startswith("val_")})

    def _check(self, batch, logs) -> None:
        bad = {}
        for key, value in (logs or {}).items():
            if (key in self.monitor) if self.monitor is not None else ("loss" in key):
                values = np.asarray(value, dtype=np.float64).reshape(-1)
                if values.size and not np.all(np.isfinite(values)):
                    bad[key] = float(values[~np.isfinite(values)][0])
        if not bad:
            return
        found = self._from_step_log()
        if found is not None:
            global_step, values = found
            raise TrainingDiverged(self._epoch + 1, global_step - self._epoch_start_step, values, global_step)
        step = batch + 1 if batch is not None else 0
        raise TrainingDiverged(
            self._epoch + 1,
            step,
            {**{k: float(np.asarray(v).reshape(-1)[0]) for k, v in logs.items() if "loss" in k}, **bad},
        )

    def _from_step_log(self):
        """``(global step, values)`` of the epoch's first non-finite row of the model's step log."""
        model = self.model
        if self._epoch_start_step is None or getattr(model, "step_log", None) is None:
            return None
        rows = np.asarray(model.step_log.numpy(), dtype=np.float64)
        fields = list(model.log_fields)
        rows = rows[rows[:, 0] > self._epoch_start_step]
        rows = rows[np.argsort(rows[:, 0])]
        finite = np.isfinite(rows[:, 1:]).all(axis=1)
        if finite.all():
            return None
        row = rows[np.argmin(finite)]
        keep = [i for i, f in enumerate(fields) if "loss" in f or f.startswith("w_")]
        return int(row[0]), {fields[i]: float(row[i]) for i in keep}


class ModelSelection(keras.callbacks.Callback):
    """Model selection on held-out data: at each epoch end, ``score_fn(model)`` (a dict of numbers)
    is written into ``logs`` and the weights of the best epoch so far (by ``logs[monitor]``) are kept.

    Callbacks placed after it in the list see the scores in their ``logs``: stack it before
    ``keras.callbacks.ModelCheckpoint(monitor="val_score", mode="max")``, ``EarlyStopping`` or
    ``TensorBoard``; the ``History`` of ``fit`` holds them too. ``best_epoch`` (0-based, -1 before
    the first epoch), ``best_score`` and ``best_weights`` (every model variable) carry over repeated
    ``fit`` calls and can be restored from a checkpoint through the constructor. With
    ``restore_best=True`` the model ends ``fit`` with the best epoch's weights.

    Example::

        def score(model):
            accuracy = float(np.mean(model.predict(x_val, verbose=0)["expression_probabilities"].argmax(1) == y_val))
            return {"val_score": accuracy}

        model.fit(train, epochs=20, callbacks=[
            dm.ModelSelection(score, restore_best=True),
            keras.callbacks.EarlyStopping(monitor="val_score", mode="max", patience=3)])
    """

    def __init__(
        self,
        score_fn,
        monitor: str = "val_score",
        mode: str = "max",
        restore_best: bool = False,
        best_score: float | None = None,
        best_epoch: int = -1,
        best_weights: list | None = None,
    ):
        super().__init__()
        if mode not in ("max", "min"):
            raise ValueError(f"mode must be 'max' or 'min', got {mode!r}")
        self.score_fn, self.monitor, self.mode, self.restore_best = score_fn, monitor, mode, restore_best
        self.best_score = best_score if best_score is not None else (-math.inf if mode == "max" else math.inf)
        self.best_epoch, self.best_weights = int(best_epoch), best_weights

    def on_epoch_end(self, epoch, logs=None):
        scores = {k: float(v) for k, v in self.score_fn(self.model).items()}
        if self.monitor not in scores:
            raise ValueError(f"score_fn returned {sorted(scores)}, without the monitored {self.monitor!r}")
        if logs is not None:
            logs.update(scores)
        value = scores[self.monitor]
        if value > self.best_score if self.mode == "max" else value < self.best_score:
            self.best_score, self.best_epoch = value, int(epoch)
            self.best_weights = [v.numpy() for v in self.model.variables]

    def on_train_end(self, logs=None):
        if self.restore_best and self.best_weights is not None:
            for variable, value in zip(self.model.variables, self.best_weights):
                variable.assign(value)
