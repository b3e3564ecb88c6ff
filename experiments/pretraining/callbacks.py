"""Keras callbacks of ``dynamic-mtl pretrain``: dropout reseeding, per-epoch checkpoints, progress, TensorBoard."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import keras
import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from data_prep import seeds
from experiments.rundir import atomic_save, atomic_write_text


class EpochSeeds(keras.callbacks.Callback):
    """At each epoch start, reset every seed generator (dropout) from ``(seed, epoch)``.

    Keras does not save seed-generator states in ``.keras`` files; resetting them per epoch makes the
    dropout masks independent of where a run was resumed.
    """

    def __init__(self, seed: int):
        super().__init__()
        self.seed = int(seed)

    def on_epoch_begin(self, epoch, logs=None):
        states = sorted((v for v in self.model.variables if "seed_generator_state" in v.path), key=lambda v: v.path)
        for i, v in enumerate(states):
            s = seeds.DROPOUT.seed_sequence(self.seed, epoch, i).generate_state(1, np.uint32)[0]
            v.assign(np.array([int(s), 0], dtype=v.dtype))


class EpochCheckpointer(keras.callbacks.Callback):
    """Every epoch: ``checkpoints/epoch_NNN.keras`` (full state), the exported network, a ``history.csv`` row,
    then ``state.json`` (so a checkpoint named there is complete), each file written atomically
    (experiments/rundir.py); keeps the last ``keep`` checkpoints.

    ``export(model, epoch)`` writes ``network.keras``; ``stop_after`` stops this invocation after that
    many epochs (as if killed; used by the resume test).
    """

    def __init__(
        self,
        out: Path,
        export: Callable,
        steps: int,
        batch_size: int,
        epochs: int,
        keep: int = 2,
        initial_epoch: int = 0,
        stop_after: int | None = None,
    ):
        super().__init__()
        self.out, self.export, self.steps, self.batch_size = Path(out), export, steps, batch_size
        self.epochs, self.keep, self.initial_epoch, self.stop_after = epochs, keep, initial_epoch, stop_after
        self._epoch_start = time.perf_counter()

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        seconds = time.perf_counter() - self._epoch_start
        ckpt_dir = self.out / "checkpoints"
        ckpt_dir.mkdir(parents=True, exist_ok=True)
        name = f"epoch_{epoch + 1:03d}.keras"
        atomic_save(ckpt_dir / name, self.model.save)
        self.export(self.model, epoch + 1)
        row = {
            "epoch": epoch + 1,
            **{k: float(v) for k, v in (logs or {}).items()},
            "learning_rate": float(np.asarray(self.model.optimizer.learning_rate)),
            "seconds": round(seconds, 2),
            "images_per_second": round(self.steps * self.batch_size / max(seconds, 1e-9), 1),
        }
        hist = self.out / "history.csv"
        earlier = hist.read_text() if hist.exists() else ""
        atomic_write_text(hist, earlier + pd.DataFrame([row]).to_csv(header=not earlier, index=False))
        state = {"epoch": epoch + 1, "checkpoint": f"checkpoints/{name}", "epochs": self.epochs}
        atomic_write_text(self.out / "state.json", json.dumps(state, indent=2))
        for old in sorted(ckpt_dir.glob("epoch_*.keras"))[: -self.keep]:
            old.unlink()
        if self.stop_after and epoch + 1 - self.initial_epoch >= self.stop_after:
            self.model.stop_training = True


class TqdmProgress(keras.callbacks.Callback):
    """One tqdm bar over all remaining steps (ETA for the whole run), loss/accuracy as postfix."""

    def __init__(self, total_steps: int, epochs: int):
        super().__init__()
        self.total_steps, self.epochs = total_steps, epochs
        self.bar = None

    def on_train_begin(self, logs=None):
        self.bar = tqdm(total=self.total_steps, desc="pretrain", unit="step", dynamic_ncols=True, mininterval=2.0)

    def on_epoch_begin(self, epoch, logs=None):
        self.bar.set_description(f"pretrain epoch {epoch + 1}/{self.epochs}")

    def on_train_batch_end(self, batch, logs=None):
        self.bar.update(1)
        if logs and batch % 20 == 19:
            self.bar.set_postfix(loss=f"{float(logs['loss']):.3f}", acc=f"{float(logs['accuracy']):.3f}", refresh=False)

    def on_epoch_end(self, epoch, logs=None):
        tqdm.write(
            f"epoch {epoch + 1}/{self.epochs}: " + ", ".join(f"{k} {float(v):.4f}" for k, v in (logs or {}).items())
        )

    def on_train_end(self, logs=None):
        self.bar.close()


class EpochScalarSummaries(keras.callbacks.Callback):
    """Epoch scalars for TensorBoard (``log_dir/train``, tags ``epoch_<metric>``, as ``keras.callbacks.TensorBoard``)
    written with TensorFlow's core summary ops, for environments without the tensorboard package."""

    def __init__(self, log_dir: str | Path):
        super().__init__()
        self.log_dir = Path(log_dir)
        self._writer = None

    def on_epoch_end(self, epoch, logs=None):
        import tensorflow as tf
        from tensorflow.core.framework import summary_pb2

        if self._writer is None:
            self._writer = tf.summary.create_file_writer(str(self.log_dir / "train"))
        meta = summary_pb2.SummaryMetadata()
        meta.plugin_data.plugin_name = "scalars"
        values = dict(logs or {})
        values["learning_rate"] = float(np.asarray(self.model.optimizer.learning_rate))
        with self._writer.as_default():
            for key, value in values.items():
                tf.summary.write(
                    f"epoch_{key}", tf.constant(float(value), tf.float32), step=epoch, metadata=meta.SerializeToString()
                )
        self._writer.flush()

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def tensorboard_callback(log_dir: str | Path) -> keras.callbacks.Callback:
    """``keras.callbacks.TensorBoard`` (epoch scalars) when the tensorboard package is installed, else
    :class:`EpochScalarSummaries` (tensorflow-cpu 2.21 no longer installs tensorboard; the files read the same)."""
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        return EpochScalarSummaries(log_dir)
    return keras.callbacks.TensorBoard(log_dir=str(log_dir), update_freq="epoch", write_graph=False)
