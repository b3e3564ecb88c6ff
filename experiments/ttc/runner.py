"""One ``dynamic-mtl ttc`` run: Tables 3-6 and Figures 4-6 of Fang et al. 2017 on one dataset.

Phases (each timed; results under ``<out>/<dataset>/<run-id>/``):

1. main comparison (Tables 4 / 5): ST (one single-task net per task), MT (shared trunk), DMT (TTC network)
   and (``crossstitch``) cross-stitch, each task getting ``steps_per_task`` turns from the same batches (task c's k-th batch
   is the same in every model of a run: the trainers share the run's batch seed); test accuracy = mean
   class accuracy; with ``capacity_control``, also ST nets trained T times longer;
2. task removal (Sec. 4.3, Table 4 last row, Table 6): drop ``removed_tasks`` from the trained DMT, freeze
   the subnets; variants "cut" (nothing else), "cut + statistics re-estimated" (the baseline: batch-norm
   statistics re-estimated on each kept task's training images, no gradient step), "connections only"
   (then the betas re-trained: the paper's procedure) and "joint" (betas and the BNs after the mixings
   re-trained: an extension); alpha shares and accuracy per variant;
3. incremental addition (Sec. 4.4, Figure 6): a DMT trained without ``incremental_task`` gets it added
   (old subnets frozen); validation error vs steps against the task trained alone, both from the same
   batches;
4. Table 3 (two-task groups trained on the imbalanced and the resampled training set), if configured.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from data_prep.ttc.common import TaskData
from experiments.environment import environment
from experiments.rundir import (
    atomic_write_json,
    atomic_write_text,
    holds_files,
    new_run_id,
    open_run_dir,
    run_directory,
)
from experiments.ttc.config import TTCConfig


# --------------------------------------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------------------------------------
def _needed_tasks(config: TTCConfig) -> list[str]:
    names = list(config.tasks)
    for group in config.table3_groups:
        names += [t for t in group if t not in names]
    return names


def load_task_data(config: TTCConfig, progress: bool = True) -> TaskData:
    """The dataset of ``config`` (embedded ones are generated / loaded without download): its registry entry's
    loader (``data_prep.ttc.datasets``) called with the run values the entry names."""
    from data_prep.ttc.datasets import ttc_dataset

    entry = ttc_dataset(config.dataset)
    values = dict(
        config.to_dict(),
        tasks=_needed_tasks(config),
        progress=progress,
        split_limits=dict(train=config.max_train, val=config.max_val, test=config.max_test),
    )
    data = entry.load()(**{parameter: values[value] for parameter, value in entry.arguments.items()})
    return _resized(data, config.size) if entry.resize_after_load else data


def _resized(data: TaskData, size: int) -> TaskData:
    if data.input_shape[0] == size:
        return data
    import cv2

    def rs(x):
        out = np.stack([cv2.resize(im, (size, size), interpolation=cv2.INTER_AREA) for im in x])
        return out if out.ndim == 4 else out[..., None]

    return TaskData(data.name, data.task_names, {k: (rs(x), y) for k, (x, y) in data.splits.items()}, data.meta)


def _columns(data: TaskData, names) -> list[int]:
    missing = [n for n in names if n not in data.task_names]
    if missing:
        raise KeyError(f"tasks {missing} not in dataset {data.name} ({data.task_names})")
    return [data.task_names.index(n) for n in names]


# --------------------------------------------------------------------------------------------------------
# bookkeeping
# --------------------------------------------------------------------------------------------------------
#: Whether TensorFlow's graph rewriting (Grappler) optimises the TTC runs' traced functions. It is off: a 5-task
#: TTC network's train step is a graph of several thousand small operations that Grappler takes seconds to
#: rewrite at the first call of every traced step and forward pass, and the rewritten graph is no faster on
#: these small convolutions (``benchmarks/ttc.py`` measures both). Numbers differ from a run with rewriting
#: in the last bits only (other fusions, other rounding).
GRAPH_REWRITES = False


@contextmanager
def graph_rewrites(enabled: bool | None = None):
    """Within the block, TensorFlow functions instantiated for the first time are (not) rewritten by
    Grappler (``enabled``, default :data:`GRAPH_REWRITES`); the process's previous setting is restored after."""
    import tensorflow as tf

    enabled = GRAPH_REWRITES if enabled is None else bool(enabled)
    key = "disable_meta_optimizer"
    before = bool(tf.config.optimizer.get_experimental_options().get(key, False))
    tf.config.optimizer.set_experimental_options({key: not enabled})
    try:
        yield
    finally:
        tf.config.optimizer.set_experimental_options({key: before})


class _Timer:
    def __init__(self):
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, name: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = round(time.perf_counter() - start, 2)


def make_run_dir(config: TTCConfig) -> Path:
    """``<out>/<dataset>/<run-id>`` (:func:`experiments.rundir.run_directory`; the run id given, else
    ``<timestamp>-<profile>``, stored in ``config``); a directory that already holds files is refused."""
    config.run_id = config.run_id or new_run_id(config.profile)
    run_dir = run_directory(config.out, config.dataset, config.run_id)
    if holds_files(run_dir):
        raise FileExistsError(f"run directory {run_dir} exists and is not empty; choose another --run-id")
    return run_dir


# --------------------------------------------------------------------------------------------------------
# training helpers
# --------------------------------------------------------------------------------------------------------
class _Lab:
    """Builds, trains and evaluates the networks of one run on one dataset.

    Networks that are trained, evaluated and then dropped (the single-task nets, Table 3's networks, the
    alpha-rate selection's DMTs: :meth:`fresh`) live in one model object per kind and task count, given the
    freshly initialised weights of a newly built network each time, so their traced train step and forward
    pass are traced once, not once per network (``reusable``, shared between labs of the same data).
    """

    def __init__(self, config: TTCConfig, data: TaskData, progress: bool, reusable: dict | None = None):
        self.config, self.data, self.progress = config, data, progress
        self.input_shape = data.input_shape
        self._seed = config.seed
        #: seeds the pools of every trainer of a phase: the same batches for every model within a run.
        self.batch_seed = 1000 * config.seed + 17
        #: (kind, task count) -> [model object, its last trainer]
        self.reusable: dict[tuple[str, int], list] = {} if reusable is None else reusable

    def next_seed(self) -> int:
        self._seed += 1
        return self._seed

    def settings(self, resample: bool | None = None):
        from dynamic_mtl.ttc.training import TrainSettings

        c = self.config
        return TrainSettings(
            batch_size=c.batch_size, lr=c.lr, alpha_lr=c.alpha_lr, resample=c.resample if resample is None else resample
        )

    def build(self, kind: str, names: list[str]):
        import keras

        from dynamic_mtl.ttc import models

        keras.utils.set_random_seed(self.next_seed())
        c = self.config
        common = dict(width=c.width)
        stats = dict(per_task_statistics=c.per_task_statistics)
        if kind == "ST":
            model = models.SingleTaskNetwork(names[0], **common)
        elif kind == "MT":
            model = models.SharedTrunkNetwork(len(names), task_names=names, **common, **stats)
        elif kind == "DMT":
            model = models.TTCNetwork(
                len(names), task_names=names, **common, **stats, connection_kwargs=dict(initial_alpha=c.initial_alpha)
            )
        elif kind == "CrossStitch":
            model = models.CrossStitchNetwork(len(names), task_names=names, **common, **stats)
        else:
            raise ValueError(kind)
        model.build((None, *self.input_shape))
        return model

    def fresh(self, kind: str, names: list[str]):
        """A network of ``kind`` for ``names`` with the initial weights :meth:`build` gives it, in the model
        object kept for its kind and task count (the weights copied in) once there is one. For networks
        that are trained, evaluated and dropped before the next one of their kind is needed."""
        model = self.build(kind, names)
        held = self.reusable.get((kind, len(names)))
        if held is None:
            self.reusable[(kind, len(names))] = [model, None]
            return model
        target = held[0]
        for mine, theirs in zip(target.variables, model.variables, strict=True):
            mine.assign(theirs)
        target.task_names = list(model.task_names)
        return target

    def trainer(
        self,
        model,
        names: list[str],
        train_columns=None,
        resample: bool | None = None,
        phase: int = 0,
        record_batches: bool = False,
    ):
        """A trainer whose pools are seeded by the run's batch seed and ``phase`` (same batches per task for
        every model trained in the same phase)."""
        from dynamic_mtl.ttc.training import TurnTrainer

        x, y = self.data.splits["train"]
        held = next((h for h in self.reusable.values() if h[0] is model), None)
        trainer = TurnTrainer(
            model,
            x,
            y,
            _columns(self.data, names),
            train_columns=train_columns,
            settings=self.settings(resample),
            seed=self.batch_seed + phase,
            record_batches=record_batches,
            reuse=None if held is None else held[1],
        )
        if held is not None:
            held[1] = trainer
        return trainer

    def reestimate(self, model, names: list[str], tasks=None) -> None:
        """Batch-norm statistics re-estimated from the training images of the tasks (no gradient step)."""
        from dynamic_mtl.ttc.training import reestimate_statistics

        x, y = self.data.splits["train"]
        reestimate_statistics(model, x, y, _columns(self.data, names), tasks=tasks)

    def evaluate(self, model, names: list[str], split: str = "test") -> np.ndarray:
        from dynamic_mtl.ttc.training import evaluate

        x, y = self.data.splits[split]
        return evaluate(model, x, y, _columns(self.data, names))

    def train_eval(
        self,
        kind: str,
        names: list[str],
        steps_per_task: int,
        resample: bool | None = None,
        splits=("test",),
        keep: bool = True,
    ):
        """Trains one model (ST: one net per task) and returns ({split: per-task accuracy}, last model).
        ``keep=False``: the model is dropped after (:meth:`fresh`; single-task nets always are)."""
        if kind == "ST":
            accs, model = {s: [] for s in splits}, None
            for name in names:
                model = self.fresh("ST", [name])
                self.trainer(model, [name], resample=resample).train(
                    steps_per_task, desc=f"ST {name}", progress=self.progress
                )
                for split in splits:
                    accs[split].append(self.evaluate(model, [name], split)[0])
            return {s: np.asarray(a) for s, a in accs.items()}, model
        model = self.build(kind, names) if keep else self.fresh(kind, names)
        self.trainer(model, names, resample=resample).train(
            steps_per_task * len(names), desc=kind, progress=self.progress
        )
        return {s: self.evaluate(model, names, s) for s in splits}, model


# --------------------------------------------------------------------------------------------------------
# phases
# --------------------------------------------------------------------------------------------------------
def run_main(lab: _Lab, timer: _Timer) -> dict:
    """Tables 4 / 5: ST, MT, DMT and cross-stitch on the same tasks, steps and batches; alpha snapshots of
    the DMT; validation accuracies too (model selection); ST trained T times longer if configured."""
    c = lab.config
    names = list(c.tasks)
    accs, val_accs, models = {}, {}, {}
    snapshots: list[tuple[int, np.ndarray]] = []
    kinds = (
        ["ST", "MT", "DMT"] + (["CrossStitch"] if c.crossstitch else []) + (["ST_long"] if c.capacity_control else [])
    )
    for kind in kinds:
        with timer(f"main/{kind}"):
            if kind == "ST_long":  # capacity / steps control: each single-task net gets T x the turns
                split_accs, models[kind] = lab.train_eval(
                    "ST", names, c.steps_per_task * len(names), splits=("test", "val")
                )
            elif kind != "DMT":
                split_accs, models[kind] = lab.train_eval(kind, names, c.steps_per_task, splits=("test", "val"))
            else:
                model = lab.build("DMT", names)
                snapshots.append((0, model.alpha_matrices()))
                lab.trainer(model, names).train(
                    c.steps_per_task * len(names),
                    every=c.history_every,
                    desc="DMT",
                    progress=lab.progress,
                    callback=lambda step, model=model: snapshots.append((step, model.alpha_matrices())),
                )
                split_accs = {s: lab.evaluate(model, names, s) for s in ("test", "val")}
                models[kind] = model
            accs[kind], val_accs[kind] = split_accs["test"], split_accs["val"]
    return dict(
        names=names,
        accs=accs,
        val_accs=val_accs,
        models=models,
        history_steps=np.asarray([s for s, _ in snapshots]),
        history_alphas=np.stack([a for _, a in snapshots]),
    )


#: Removal variants (Sec. 4.3): name -> (re-train the betas, re-train the BNs after the mixings).
REMOVAL_VARIANTS = {
    "connections only": (True, False),  # the paper: "re-train the TTC" (betas), statistics re-estimated
    "joint": (True, True),  # extension: betas and the BNs after the mixings
}


def run_removal(lab: _Lab, dmt, timer: _Timer) -> dict:
    """Sec. 4.3: cut subnets off the trained DMT, freeze the rest; the accuracy right after the cut, after
    re-estimating the batch-norm statistics alone (baseline), and after re-training the connections (paper)
    or the connections and their BNs (joint), all from the same re-estimated statistics and batches."""
    from dynamic_mtl.ttc.models import remove_tasks

    c = lab.config
    kept = [t for t in dmt.task_names if t not in c.removed_tasks]
    keep_idx = [dmt.task_names.index(t) for t in kept]
    before_acc = lab.evaluate(dmt, dmt.task_names)
    out = dict(
        kept=kept,
        removed=list(c.removed_tasks),
        keep_index=keep_idx,
        acc_before=before_acc[keep_idx],
        alpha_full=dmt.alpha_matrices(),
        variants={},
    )
    with timer("removal"):
        cut = remove_tasks(dmt, c.removed_tasks, lab.input_shape)
        out["acc_cut"] = lab.evaluate(cut, kept)
        out["alpha_start"] = cut.alpha_matrices()
        lab.reestimate(cut, kept)
        out["acc_stats"] = lab.evaluate(cut, kept)
        unchanged = True
        for variant, (_, train_norms) in REMOVAL_VARIANTS.items():
            reduced = remove_tasks(dmt, c.removed_tasks, lab.input_shape, train_norms=train_norms)
            subnet_layers = [layer for t in range(reduced.num_tasks) for layer in reduced.task_layers(t)]
            frozen = _snapshot(subnet_layers)
            lab.reestimate(reduced, kept)
            lab.trainer(reduced, kept, phase=1).train(
                c.removal_steps_per_task * len(kept), desc=f"removal {variant}", progress=lab.progress
            )
            out["variants"][variant] = dict(acc=lab.evaluate(reduced, kept), alpha_after=reduced.alpha_matrices())
            unchanged = unchanged and _unchanged(frozen, subnet_layers)
    paper_variant = out["variants"]["connections only"]
    out.update(acc_after=paper_variant["acc"], alpha_after=paper_variant["alpha_after"], subnets_unchanged=unchanged)
    return out


def _snapshot(layers) -> list[np.ndarray]:
    return [np.array(v.numpy()) for layer in layers for v in layer.weights]


def _unchanged(snapshot: list[np.ndarray], layers) -> bool:
    """Whether every weight of ``layers`` is bit-identical to ``snapshot``."""
    return all(np.array_equal(a, b) for a, b in zip(snapshot, _snapshot(layers), strict=True))


def _steps_to(curve: pd.DataFrame, column: str, threshold: float) -> int | None:
    hit = curve.loc[curve[column] <= threshold, "step"]
    return int(hit.iloc[0]) if len(hit) else None


def run_incremental(lab: _Lab, timer: _Timer) -> dict:
    """Sec. 4.4 / Figure 6: add ``incremental_task`` to a DMT trained on the other tasks."""
    from dynamic_mtl.ttc.models import add_task
    from dynamic_mtl.ttc.training import evaluate

    c = lab.config
    new = c.incremental_task
    old = [t for t in c.tasks if t != new]
    x_val, y_val = lab.data.splits["val"]
    col = _columns(lab.data, [new])
    with timer("incremental/base"):
        base = lab.build("DMT", old)
        lab.trainer(base, old).train(c.steps_per_task * len(old), desc="incremental base", progress=lab.progress)
    base_old_logits = _logits(base, lab.data.splits["test"][0])
    with timer("incremental/add"):
        grown = add_task(base, new, lab.input_shape)
        old_layers = [layer for t in range(len(old)) for layer in grown.task_layers(t)]
        frozen = _snapshot(old_layers)
        # the frozen BNs' statistics copy for the new task, from its training images (old copies untouched)
        lab.reestimate(grown, [*old, new], tasks=[len(old)])
        inc_curve, inc_batches = _curve(lab, grown, [*old, new], train_column=len(old), x_val=x_val, y_val=y_val)
    with timer("incremental/alone"):
        alone = lab.fresh("ST", [new])
        alone_curve, alone_batches = _curve(lab, alone, [new], train_column=0, x_val=x_val, y_val=y_val)
    curve = pd.DataFrame(
        dict(step=[s for s, _ in inc_curve], incremental=[e for _, e in inc_curve], alone=[e for _, e in alone_curve])
    )
    unchanged = _unchanged(frozen, old_layers)
    old_logit_change = float(np.abs(_logits(grown, lab.data.splits["test"][0])[:, : len(old)] - base_old_logits).max())
    x_test, y_test = lab.data.splits["test"]
    thr = c.error_threshold
    alone_final = float(curve["alone"].iloc[-1])
    summary = dict(
        task=new,
        old_tasks=old,
        threshold=thr,
        steps_incremental=_steps_to(curve, "incremental", thr),
        steps_alone=_steps_to(curve, "alone", thr),
        alone_final_error=alone_final,
        incremental_final_error=float(curve["incremental"].iloc[-1]),
        steps_incremental_to_alone_final=_steps_to(curve, "incremental", alone_final),
        steps_alone_to_alone_final=_steps_to(curve, "alone", alone_final),
        test_acc_incremental=float(evaluate(grown, x_test, y_test, _columns(lab.data, [*old, new]))[-1]),
        test_acc_alone=float(evaluate(alone, x_test, y_test, col)[0]),
        old_subnets_bit_identical=bool(unchanged),
        old_task_logit_max_change=old_logit_change,
        same_batches=len(inc_batches) == len(alone_batches)
        and all(np.array_equal(a, b) for (_, a), (_, b) in zip(inc_batches, alone_batches)),
    )
    for key, a, b in (
        ("speedup_threshold", "steps_alone", "steps_incremental"),
        ("speedup_alone_final", "steps_alone_to_alone_final", "steps_incremental_to_alone_final"),
    ):
        summary[key] = round(summary[a] / summary[b], 2) if summary[a] and summary[b] else None
    return dict(curve=curve, summary=summary, model=grown)


def _logits(model, x):
    from dynamic_mtl.ttc.training import predict_logits

    return predict_logits(model, x)


def _curve(lab: _Lab, model, names, train_column: int, x_val, y_val) -> tuple[list[tuple[int, float]], list]:
    """Trains ``train_column`` only; validation error of that task every ``curve_every`` steps. Returns the
    curve and the drawn batches (phase 2: the same for every model training the same task)."""
    from dynamic_mtl.ttc.training import evaluate

    c = lab.config
    cols = _columns(lab.data, names)
    points = []

    def record(step):
        acc = evaluate(model, x_val, y_val, cols, tasks=[train_column])[train_column]
        points.append((step, round(1.0 - float(acc), 4)))

    record(0)
    trainer = lab.trainer(model, names, train_columns=[train_column], phase=2, record_batches=True)
    trainer.train(
        c.incremental_steps,
        callback=record,
        every=c.curve_every,
        desc=f"curve {names[train_column]}",
        progress=lab.progress,
    )
    return points, trainer.batches


def run_table3(lab: _Lab, timer: _Timer) -> pd.DataFrame:
    """Table 3: two-task groups, ST / MT / DMT, on the imbalanced and on the resampled training set."""
    c = lab.config
    rows = []
    for group in c.table3_groups:
        for regime, resample in (("imbalanced", False), ("resampled", True)):
            for kind in ("ST", "MT", "DMT"):
                with timer(f"table3/{'+'.join(group)}/{regime}/{kind}"):
                    accs, _ = lab.train_eval(kind, list(group), c.table3_steps_per_task, resample=resample, keep=False)
                for name, acc in zip(group, accs["test"]):
                    rows.append(dict(group="+".join(group), regime=regime, model=kind, task=name, accuracy=acc))
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------------------------
# entry point
# --------------------------------------------------------------------------------------------------------
def run(config: TTCConfig, progress: bool = True) -> Path:
    """Runs every phase of ``config`` and writes tables, alphas and figures; returns the run directory."""
    from experiments.ttc import report

    start = time.perf_counter()
    timer = _Timer()
    with timer("data"):
        data = load_task_data(config, progress=progress)
    _columns(data, _needed_tasks(config))
    run_dir = make_run_dir(config)
    with open_run_dir(run_dir), graph_rewrites():  # run_dir: created and locked (experiments/rundir.py)
        env = dict(environment(), started=datetime.now().isoformat(timespec="seconds"), graph_rewrites=GRAPH_REWRITES)
        atomic_write_json(run_dir / "environment.json", env)
        atomic_write_text(run_dir / "data_summary.csv", data.summary().to_csv(index=False))
        _write_config(config, run_dir)
        lab = _Lab(config, data, progress)
        main = run_main(lab, timer)
        main["models"]["DMT"].save(run_dir / "dmt.keras")
        removal = run_removal(lab, main["models"]["DMT"], timer)
        incremental = run_incremental(lab, timer) if config.incremental_task else None
        table3 = run_table3(lab, timer) if config.table3_groups else None
        timer.seconds["total"] = round(time.perf_counter() - start, 2)
        report.write_all(run_dir, config, data, main, removal, incremental, table3, timer.seconds, env)
    atomic_write_text(Path(config.out) / config.dataset / "LATEST", config.run_id + "\n")
    return run_dir


def _write_config(config: TTCConfig, run_dir: Path) -> None:
    values = config.to_dict()
    atomic_write_json(run_dir / "config.json", values)
    atomic_write_text(run_dir / "config.yaml", yaml.safe_dump(values, sort_keys=False))
