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
    began, interpolated between flushes. Appends when the file exists (resumed runs).
    """

    def __init__(self, path: str, flush_every: int = 256):
        super().__init__()
        if flush_every < 1:
            raise ValueError("flush_every must be >= 1")
        self.path = str(path)
        self.flush_every = int(flush_every)
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
            raise ValueError(f"flush_every={self.flush_every} x steps_per_execution={per_call} exceeds the "
                             f"model's log_capacity={capacity}")
        if self._start is None:  # keep one clock across repeated fit() calls (epoch-by-epoch training)
            self._start = time.perf_counter()
        self._last_time = time.perf_counter() - self._start
        self._last_step = int(self.model.train_step_count.numpy())
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)

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
        new_file = not os.path.exists(self.path)
        span = max(last - self._last_step, 1)
        with open(self.path, "a", newline="") as handle:
            writer = csv.writer(handle)
            if new_file:
                writer.writerow(header)
            for row in fresh:
                frac = (row[0] - self._last_step) / span
                wall = self._last_time + frac * (now - self._last_time)
                logits = row[-len(task_names):]
                a_values = [math.exp(v) if v < 709 else math.inf for v in logits]
                writer.writerow([int(row[0]), self._epoch, f"{wall:.4f}"] + [f"{v:.8g}" for v in row[1:]]
                                + [f"{v:.8g}" for v in a_values])
        self._last_step = int(last)
        self._last_time = now
