"""Train and evaluate one method on one fold, with per-epoch checkpoints and model selection."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import pandas as pd
from tqdm.auto import tqdm

import dynamic_mtl as dm
from data_prep import seeds
from data_prep.pipeline import Preprocessing, evaluation_batches, identity_map, steps_per_epoch, training_epochs
from dynamic_mtl import verification
from dynamic_mtl.callbacks import ModelSelection, StopOnDivergence, TrainingDiverged, truncate_step_log
from experiments.face_expression.config import ExperimentConfig
from experiments.face_expression.data import FoldSplit, ImageStore, PreparedData
from experiments.face_expression.histories import history_path
from experiments.face_expression.methods import MethodSpec, with_static_weights
from experiments.rundir import RunError, atomic_write, temporary_name


class RunDiverged(RunError):
    """Training of one (method, fold) reached a non-finite loss; nothing of it is published."""


@dataclass
class _ModelSlot:
    model: dm.DynamicMultiTaskModel
    initial: list
    optimizer_initial: list


class FoldRunner:
    """Builds one model per method (reused across folds: weights and optimizer state are
    reset, so the train step is traced once), trains it on a fold's training subjects,
    selects the epoch on the validation subjects and evaluates the test subjects.

    Paired design: in a fold every method starts from the same initial network (drawn from
    ``(seed, fold)``, or the same pretrained checkpoint), the same weight-unit initialisation
    (drawn from ``seed``) and sees the same batches (drawn from ``(seed, fold, epoch)``), so
    differences between methods of one fold are differences between the methods.
    """

    def __init__(
        self,
        config: ExperimentConfig,
        data: PreparedData,
        run_dir: Path,
        strategy,
        num_identities: int,
        pretrained: str | None,
        progress=None,
        tensorboard: bool = False,
        save_models: bool = False,
    ):
        self.config = config
        self.tensorboard = tensorboard
        self.save_models = save_models
        self.data = data
        self.run_dir = Path(run_dir)
        self.strategy = strategy
        self.num_identities = num_identities
        self.pretrained = pretrained
        self.progress = progress
        self.store = ImageStore(
            data.root,
            data.manifest["path"].tolist(),
            progress=progress is not None and not getattr(progress, "disable", False),
        )
        self._slots: dict[str, _ModelSlot] = {}
        self._initial_networks: dict[int, list] = {}
        # evaluation crops are deterministic: each image is preprocessed once per run, not once per epoch
        self._evaluation_images = EvaluationImageCache(self.store, self.preprocessing, self.evaluation_batch_size)
        for sub in ("checkpoints", "steps", "per_fold"):
            (self.run_dir / sub).mkdir(parents=True, exist_ok=True)

    # ------------------------------------------------------------------ models
    def _build(self, method: MethodSpec) -> dm.DynamicMultiTaskModel:
        c = self.config
        method = with_static_weights(method, c.static_weights)
        weighting, options = method.weighting or "static", dict(method.options)
        if weighting == "dynamic":
            options.setdefault("sigma", c.dynamic_sigma)
            options.setdefault("stop_gradient_weights", c.stop_gradient_weights)
        if method.weighting is None:
            options = {"weights": [1.0, 0.0]}
        # one seed for every method: the weight unit (and any strategy variable) starts the same
        keras.utils.set_random_seed(seeds.INIT.seed(c.seed))
        with _dtype_policy("mixed_float16" if c.mixed_precision else None):
            model = self._build_network(method, weighting, options)
        steps = max(1, self._train_rows() // c.batch_size)
        model.compile(
            network_optimizer=self._network_optimizer_config(method).build(steps),
            weight_optimizer=self._weight_optimizer_config(method).build(steps),
            jit_compile=c.jit_compile,
            steps_per_execution=c.steps_per_execution,
        )
        return model

    def _network_optimizer_config(self, method: MethodSpec):
        """The config's fine-tuning optimizer for a row that starts from the pretrained checkpoint
        (when the config sets one), else its network optimizer."""
        c = self.config
        if c.finetune_optimizer is not None and self._starts_pretrained(method):
            return c.finetune_optimizer
        return c.network_optimizer

    def _weight_optimizer_config(self, method: MethodSpec):
        """The config's weight optimizer, at the method's own learning rate when it sets one."""
        c = self.config
        if method.weight_learning_rate is None:
            return c.weight_optimizer
        return dataclasses.replace(c.weight_optimizer, learning_rate=method.weight_learning_rate)

    def _network_options(self) -> dict:
        """The arguments of ``build_face_expression_network`` this config implies."""
        c = self.config
        return dict(
            num_identities=self.num_identities,
            num_expressions=len(self.data.expression_classes),
            backbone=c.backbone,
            image_size=c.image_size,
            backbone_options=c.backbone_options,
            embedding_size=c.embedding_size,
            dropout_rate=c.dropout_rate,
            weight_decay=c.weight_decay,
        )

    def _build_network(self, method: MethodSpec, weighting: str, options: dict) -> dm.DynamicMultiTaskModel:
        c = self.config
        return dm.build_face_expression_model(
            **self._network_options(),
            weighting=weighting,
            weighting_options=options,
            weight_unit_options={**c.weight_unit, **method.unit_options},
            center_loss_weight=c.center_loss_weight,
            center_loss_input=c.center_loss_input,
            synchronized_batchnorm=c.strategy != "default",
        )

    def compile_settings(self) -> dict:
        """What the built models actually run with (``jit_compile="auto"`` resolved), per method."""
        return {
            name: {
                "jit_compile": bool(slot.model.jit_compile),
                "steps_per_execution": int(slot.model.steps_per_execution),
                "dtype_policy": slot.model.dtype_policy.name,
                "network_optimizer": type(slot.model.optimizer).__name__,
            }
            for name, slot in self._slots.items()
        }

    def _train_rows(self) -> int:
        return int(
            len(self.data.manifest) * (1 - 1 / max(len(self.data.fold_ids), 2)) * (1 - self.config.validation_subjects)
        )

    def initial_network(self, fold: int) -> list:
        """The fold's initial network weights (every network variable), drawn from ``(seed, fold)``
        and shared by every method of the fold."""
        if fold not in self._initial_networks:
            c = self.config
            keras.utils.set_random_seed(seeds.FOLD_INIT.seed(c.seed, fold))
            with _dtype_policy("mixed_float16" if c.mixed_precision else None):
                network = dm.build_face_expression_network(**self._network_options())
            self._initial_networks[fold] = [v.numpy() for v in network.variables]
        return self._initial_networks[fold]

    def model_for(self, method: MethodSpec, fold: int) -> dm.DynamicMultiTaskModel:
        """The method's model at the fold's start: the fold's shared initial network (or the
        pretrained checkpoint), the method's initial weighting variables, fresh optimizer state."""
        if method.name not in self._slots:
            with self.strategy.scope():
                model = self._build(method)
            optimizers = _optimizer_variables(model)
            self._slots[method.name] = _ModelSlot(
                model, [v.numpy() for v in model.variables], [v.numpy() for v in optimizers]
            )
        slot = self._slots[method.name]
        _assign(slot.model.variables, slot.initial)
        _assign(_optimizer_variables(slot.model), slot.optimizer_initial)
        _assign(slot.model.network.variables, self.initial_network(fold))
        if self._starts_pretrained(method):
            from dynamic_mtl.transfer import load_pretrained

            load_pretrained(slot.model, self.pretrained)
        return slot.model

    def _starts_pretrained(self, method: MethodSpec) -> bool:
        if method.init == "scratch":
            return False
        if method.init == "pretrained" and not self.pretrained:
            raise ValueError(f"method {method.name!r} needs a pretrained checkpoint")
        return bool(self.pretrained)

    # ------------------------------------------------------------------ one fold
    def run(self, method: MethodSpec, split: FoldSplit, resume: bool) -> dict:
        c = self.config
        tag = f"{method.name}_fold{split.fold}"
        id_map = identity_map(split.train_subjects)
        checkpoint = self.run_dir / "checkpoints" / f"{tag}.npz"
        steps_csv = self.run_dir / "steps" / f"{tag}.csv"
        model, state, best = self._restore(method, split, resume, checkpoint, steps_csv)
        # the step log keeps its rows up to the restored checkpoint's step (no rows flushed after it)
        logger = dm.StepLogger(
            str(steps_csv),
            flush_every=c.log_flush_every,
            strict=True,
            summary_dir=self.run_dir / "tensorboard" / tag if self.tensorboard else None,
        )
        divergence = StopOnDivergence()
        selection = ModelSelection(
            lambda m: self.validate(m, method, split),
            best_score=state["best_score"],
            best_epoch=state["best_epoch"],
            best_weights=best,
        )
        callbacks = [logger, divergence, selection, *self._extra_callbacks(tag)]

        epochs = c.epochs if method.weighting is not None else 0
        first = state["epoch"]
        clock = {}

        def epoch_begin(epoch, logs=None):
            clock["start"] = time.perf_counter()

        def epoch_end(epoch, logs=None):
            # the last callback: it sees the validation scores in ``logs`` and the flushed step log
            nonlocal best
            state["history"].append({"epoch": epoch, **{k: float(v) for k, v in (logs or {}).items()}})
            state.update(best_score=selection.best_score, best_epoch=selection.best_epoch)
            best = selection.best_weights
            state["epoch"] = epoch + 1
            state["seconds"] += time.perf_counter() - clock["start"]
            _save_checkpoint(checkpoint, model, state, best)
            if self.progress is not None:
                self.progress.set_postfix_str(f"{tag} epoch {epoch + 1}/{epochs}", refresh=False)
                self.progress.update(1)

        bookkeeping = keras.callbacks.LambdaCallback(on_epoch_begin=epoch_begin, on_epoch_end=epoch_end)
        if first < epochs:
            # every remaining epoch in one ``fit``: epoch e's batches are drawn from (seed, fold, e) as
            # an epoch-by-epoch run draws them, so a resumed run sees the same batches
            epoch_seeds = [seeds.EPOCH_ORDER.seed(c.seed, split.fold, e) for e in range(first, epochs)]
            dataset = self.training_dataset(split, id_map, epoch_seeds)
            try:
                model.fit(
                    dataset,
                    epochs=epochs,
                    initial_epoch=first,
                    steps_per_epoch=steps_per_epoch(len(split.train), c.batch_size),
                    verbose=0,
                    shuffle=False,
                    callbacks=[*callbacks, bookkeeping],
                )
            except TrainingDiverged as err:
                raise RunDiverged(
                    f"training diverged in {method.name} fold {split.fold} epoch {err.epoch} "
                    f"step {err.step}: "
                    + ", ".join(f"{k}={v:.6g}" for k, v in err.values.items())
                    + "; nothing of it is published (lower the learning rate)"
                ) from err
        _assign(model.variables, best)
        result = self.evaluate(model, method, split)
        if self.save_models:
            self._save_model(model, tag)
        selected = state["history"][state["best_epoch"]] if state["best_epoch"] >= 0 else {}
        result.update(
            method=method.name,
            label=method.label,
            fold=split.fold,
            best_epoch=state["best_epoch"],
            epochs=epochs,
            train_seconds=round(state["seconds"], 2),
            val_score=selected.get("val_score", float("nan")),
            val_expression_accuracy=selected.get("val_expression_accuracy", float("nan")),
            val_verification_accuracy=selected.get("val_verification_accuracy", float("nan")),
        )
        history_csv = pd.DataFrame(state["history"]).to_csv(index=False)
        atomic_write(history_path(self.run_dir, method.name, split.fold), lambda h: h.write(history_csv.encode()))
        if self.progress is not None:
            self.progress.update(1)
        return result

    def _save_model(self, model, tag: str) -> None:
        """The selected model as ``models/<method>_fold<k>.keras`` (``keras.models.load_model``), atomically."""
        path = self.run_dir / "models" / f"{tag}.keras"
        path.parent.mkdir(exist_ok=True)
        tmp = temporary_name(path).with_suffix(".keras")
        try:
            model.save(tmp)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)

    def _extra_callbacks(self, tag: str) -> list:
        """``tensorboard``: the epoch logs (losses, training accuracies, the validation scores of model
        selection) as TensorBoard scalars in ``tensorboard/<method>_fold<k>`` (the step scalars come
        from the step logger)."""
        if not self.tensorboard:
            return []
        from experiments.pretraining.callbacks import tensorboard_callback

        return [tensorboard_callback(self.run_dir / "tensorboard" / tag)]

    def _restore(self, method: MethodSpec, split: FoldSplit, resume: bool, checkpoint: Path, steps_csv: Path):
        """``(model, state, best weights)`` at the fold's start, or (``resume``) at its last finished
        epoch's checkpoint, with the step log cut to the checkpoint's step. A checkpoint that cannot be
        read, or whose step log misses rows, is not trusted: the fold starts again (named on stdout)."""
        model = self.model_for(method, split.fold)
        state = {"epoch": 0, "best_score": -np.inf, "best_epoch": -1, "history": [], "seconds": 0.0}
        best = [v.numpy() for v in model.variables]
        if method.weighting is not None and resume and checkpoint.exists():
            try:
                saved, saved_best = _load_checkpoint(checkpoint, model)
                truncate_step_log(str(steps_csv), int(model.train_step_count.numpy()), strict=True)
                return model, saved, saved_best
            except (OSError, ValueError, KeyError, zipfile.BadZipFile) as err:
                tqdm.write(
                    f"[dynamic-mtl] {checkpoint} or {steps_csv.name} is unusable ({type(err).__name__}: "
                    f"{err}); not trusted: {method.name} fold {split.fold} starts again from its first epoch",
                    file=sys.stdout,
                )
                model = self.model_for(method, split.fold)  # undo a partial restore
        checkpoint.unlink(missing_ok=True)
        steps_csv.unlink(missing_ok=True)
        return model, state, best

    # ------------------------------------------------------------------ data
    @property
    def preprocessing(self) -> Preprocessing:
        """The config's per-image preprocessing (the authors' 160-of-182 crop, flip, its standardisation)."""
        return Preprocessing(self.config.image_size, standardize=self.config.standardize)

    def training_dataset(self, split: FoldSplit, id_map: dict, seed: int | list[int]):
        """Training images, shuffled and augmented from ``seed`` (one epoch), or from each seed of a
        list (one epoch per seed, one after another; the harness draws epoch e's seed from run seed,
        fold and e, so a resumed run sees the same batches). Every image has an identity; an image
        without an expression label (Oulu-CASIA's neutral frames under the 6-class protocol) keeps
        the missing-label sentinel -1, so it trains the identity branch and no expression loss."""
        rows = split.train
        labels = {
            "identity": np.array([id_map[s] for s in rows["subject"].astype(str)], np.int32),
            "expression": rows["expression"].to_numpy().astype(np.int32),
        }
        images = self.store.take(rows["path"].tolist())
        epoch_seeds = seed if isinstance(seed, list) else [seed]
        return training_epochs(images, labels, self.preprocessing, self.config.batch_size, epoch_seeds)

    @property
    def evaluation_batch_size(self) -> int:
        return self.config.batch_size * 2

    def evaluation_dataset(self, rows: pd.DataFrame):
        images = self.store.take(rows["path"].tolist())
        return evaluation_batches(images, self.preprocessing, self.evaluation_batch_size)

    # ------------------------------------------------------------------ evaluation
    def _predict(self, model, rows: pd.DataFrame) -> dict[str, np.ndarray]:
        images = self._evaluation_images.take(rows["path"].tolist())
        out = model.predict(images, batch_size=self.evaluation_batch_size, verbose=0)
        return {"embedding": out["embedding"], "expression": out["expression_probabilities"]}

    @staticmethod
    def _expression_accuracy(rows, out) -> float:
        labels = rows["expression"].to_numpy().astype(int)
        keep = labels >= 0
        if not keep.any():
            return float("nan")
        return float(np.mean(out["expression"][keep].argmax(axis=1) == labels[keep]))

    @staticmethod
    def _pair_distances(rows, out, pairs) -> np.ndarray:
        index = {p: i for i, p in enumerate(rows["path"])}
        missing = sorted(set(pairs["path_a"]).union(pairs["path_b"]) - set(index))
        if missing:
            raise ValueError(f"{len(missing)} pair images are not in the fold's manifest rows, e.g. {missing[0]}")
        emb = out["embedding"]
        # integer indices also when a fold has no pairs (a one-subject fold): then (0, D) embeddings
        return verification.pair_distances(
            emb[pairs["path_a"].map(index).to_numpy(dtype=np.intp)],
            emb[pairs["path_b"].map(index).to_numpy(dtype=np.intp)],
        )

    def validate(self, model, method: MethodSpec, split: FoldSplit) -> dict:
        """Model selection on the held-out training subjects (never the test fold): the validation
        accuracies and ``val_score``, their mean over the tasks the method reports (the
        :class:`~dynamic_mtl.callbacks.ModelSelection` callback writes them into each epoch's logs)."""
        out = self._predict(model, split.validation)
        scores = {"val_expression_accuracy": self._expression_accuracy(split.validation, out)}
        pairs = split.validation_pairs
        if len(pairs):
            d = self._pair_distances(split.validation, out, pairs)
            s = pairs["issame"].to_numpy()
            scores["val_verification_accuracy"] = verification.accuracy_at(verification.best_threshold(d, s), d, s)
        else:
            scores["val_verification_accuracy"] = float("nan")
        keys = [f"val_{r}_accuracy" for r in method.reports]
        values = [scores[k] for k in keys if np.isfinite(scores[k])]
        scores["val_score"] = float(np.mean(values)) if values else 0.0
        return scores

    def evaluate(self, model, method: MethodSpec, split: FoldSplit) -> dict:
        """Expression accuracy on the test subjects' images; pair distances saved for the
        threshold protocols of experiments/face_expression/tables.py (verification metrics are computed once all folds ran)."""
        out = self._predict(model, split.test)
        result = {"expression_accuracy": self._expression_accuracy(split.test, out)}
        test_d = self._pair_distances(split.test, out, split.test_pairs)
        val_out = self._predict(model, split.validation)
        val_d = self._pair_distances(split.validation, val_out, split.validation_pairs)
        arrays = dict(
            test_distances=test_d,
            test_issame=split.test_pairs["issame"].to_numpy(),
            test_kind=split.test_pairs.get("kind", pd.Series([""] * len(test_d))).to_numpy().astype(str),
            validation_distances=val_d,
            validation_issame=split.validation_pairs["issame"].to_numpy(),
            test_expression_true=split.test["expression"].to_numpy().astype(np.int64),
            test_expression_pred=out["expression"].argmax(axis=1).astype(np.int64),
        )
        atomic_write(
            self.run_dir / "per_fold" / f"{method.name}_fold{split.fold}_distances.npz",
            lambda handle: np.savez(handle, **arrays),
        )
        result["num_test_pairs"] = int(len(test_d))
        result["num_test_images"] = int(len(split.test))
        return result


class EvaluationImageCache:
    """The evaluation input (central crop, standardised) of each image of an :class:`ImageStore`,
    preprocessed the first time it is asked for and kept for the rest of the run: validation runs after
    every epoch of every method, on images whose evaluation crop never changes. Memory: one float32
    ``[S, S, 3]`` array per image evaluated (32 px: 12 KiB; 160 px: 300 KiB)."""

    def __init__(self, store: ImageStore, preprocessing: Preprocessing, batch_size: int):
        self.store, self.preprocessing, self.batch_size = store, preprocessing, batch_size
        self._rows: dict[str, int] = {}
        self._images: list[np.ndarray] = []

    def take(self, paths: list[str]) -> np.ndarray:
        """``float32 [len(paths), S, S, 3]``: exactly what :func:`evaluation_batches` yields for them."""
        new = [p for p in dict.fromkeys(paths) if p not in self._rows]
        if new:
            batches = evaluation_batches(self.store.take(new), self.preprocessing, self.batch_size)
            self._images.extend(image for batch in batches for image in batch.numpy())
            self._rows.update((p, len(self._rows)) for p in new)
        return np.stack([self._images[self._rows[p]] for p in paths]) if paths else self._empty()

    def _empty(self) -> np.ndarray:
        size = self.preprocessing.image_size
        return np.zeros((0, size, size, 3), np.float32)


# ---------------------------------------------------------------------- state helpers
@contextlib.contextmanager
def _dtype_policy(name: str | None):
    """Build under Keras's global dtype policy ``name`` (None: leave it), restoring it afterwards;
    the built layers keep their own policies."""
    if name is None:
        yield
        return
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def _optimizer_variables(model) -> list:
    variables = list(model.optimizer.variables)
    if (
        getattr(model, "weight_optimizer", None) is not None
        and model.weighting_variables
        and not model.weighting.uses_network_optimizer
    ):
        variables += list(model.weight_optimizer.variables)
    return variables


def _assign(variables, values) -> None:
    if len(variables) != len(values):
        raise ValueError(f"state has {len(values)} arrays for {len(variables)} variables")
    for variable, value in zip(variables, values):
        variable.assign(value)


def _state_groups(model) -> dict[str, list]:
    """The resume state's variables: the model's (with its step counter) and each optimizer's (with
    its iteration count), as :func:`_optimizer_variables` lists them."""
    groups = {"model": list(model.variables), "network_optimizer": list(model.optimizer.variables)}
    optimizers = _optimizer_variables(model)
    if len(optimizers) > len(groups["network_optimizer"]):
        groups["weight_optimizer"] = list(model.weight_optimizer.variables)
    return groups


def _seed_generator_keys(model) -> dict[int, str]:
    """``id(state variable) -> "<layer name>/<variable name>"`` for the seed generators of the model's
    layers (dropout): their own paths are numbered per process (``seed_generator_7/...``)."""
    keys = {}
    for layer in model._flatten_layers(include_self=True, recursive=True):
        for generator in getattr(layer, "_seed_generators", None) or []:
            keys.setdefault(id(generator.state), f"{layer.name}/{generator.state.name}")
    return keys


def _state_keys(group: str, variables: list, seed_generators: dict[int, str]) -> list[str]:
    """Each variable's key in a checkpoint: its Keras ``path`` (a seed generator's state: its layer's
    name); for optimizer variables without the optimizer's own name, which is numbered per process
    (``rmsprop``, ``rmsprop_1``, ...)."""
    if group.endswith("optimizer"):
        keys = [v.path.split("/", 1)[-1] for v in variables]
    else:
        keys = [seed_generators.get(id(v), v.path) for v in variables]
    # a repeated path (a LossScaleOptimizer's own ``iteration`` beside its inner optimizer's) gets its
    # occurrence number, in the order the optimizer lists its variables
    seen: dict[str, int] = {}
    unique = []
    for key in keys:
        seen[key] = seen.get(key, 0) + 1
        unique.append(key if seen[key] == 1 else f"{key}#{seen[key] - 1}")
    return unique


def _save_checkpoint(path: Path, model, state: dict, best: list) -> None:
    """Model (with its step counter, which the step log is kept consistent with on resume), both
    optimizers (with iteration counts) and the best weights, keyed by variable path, written
    atomically under a unique temporary name."""
    import json

    arrays = {}
    groups, generators = _state_groups(model), _seed_generator_keys(model)
    for group, variables in groups.items():
        for key, variable in zip(_state_keys(group, variables, generators), variables):
            arrays[f"{group}/{key}"] = variable.numpy()
    for key, value in zip(_state_keys("model", groups["model"], generators), best):
        arrays[f"best/{key}"] = value
    arrays["state"] = np.frombuffer(json.dumps(state).encode(), dtype=np.uint8)
    atomic_write(path, lambda handle: np.savez(handle, **arrays))


def _load_checkpoint(path: Path, model) -> tuple[dict, list]:
    """``(state, best weights)`` of a checkpoint, its variables assigned to ``model`` by path. Raises
    ``ValueError`` (the fold is then not trusted and starts again) when the checkpoint's variable
    paths or shapes differ from the model's, before anything is assigned."""
    import json

    groups, generators = _state_groups(model), _seed_generator_keys(model)
    with np.load(path) as data:
        stored = set(data.files) - {"state"}
        values = {}
        group_keys = {}
        for group, variables in (*groups.items(), ("best", groups["model"])):
            keys = [f"{group}/{k}" for k in _state_keys("model" if group == "best" else group, variables, generators)]
            group_keys[group] = keys
            missing = sorted(set(keys) - stored)
            if missing:
                raise ValueError(
                    f"the checkpoint does not hold the model's variable {missing[0]!r} "
                    f"({len(missing)} of {len(keys)} {group} variables missing)"
                )
            for key, variable in zip(keys, variables):
                value = data[key]
                if tuple(value.shape) != tuple(variable.shape):
                    raise ValueError(
                        f"checkpoint variable {key!r} has shape {value.shape}, the model's {variable.shape}"
                    )
                values[key] = value
            stored -= set(keys)
        if stored:
            raise ValueError(f"the checkpoint holds variables the model does not have, e.g. {sorted(stored)[0]!r}")
        state = json.loads(bytes(data["state"]).decode())
    for group, variables in groups.items():
        for key, variable in zip(group_keys[group], variables):
            variable.assign(values[key])
    return state, [values[key] for key in group_keys["best"]]
