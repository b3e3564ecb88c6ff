"""Training protocol of Fang et al. 2017 (Sec. 3 Algorithm 1, Sec. 4.1-4.2).

* Each task has its own pool of labelled samples; with ``resample=True`` the minority class is
  resampled so that every batch holds equally many positives and negatives (Sec. 4.1, 4.2).
* Tasks take turns (Sec. 4.1): step s trains on a batch from task ``s mod T``'s pool, with that task's
  sigmoid cross-entropy (Eq. 6) as the loss. The gradients are automatic differentiation of that turn's
  loss (Eq. 5-6, one term per turn): in a TTC network task i's loss reaches subnet j through alpha_ij
  (Eq. 10-11), and also through the later mixings, so a lower TTC's beta_kj receives gradient from task i's
  loss when task k's map feeds task i higher up. Algorithm 1 writes the update per pair; ours is the exact
  gradient of the whole network.
* Each task's pool draws from its own random stream, seeded by ``(seed, label column)``: task c's k-th
  batch is the same in every model trained with the same seed (single-task, shared trunk, TTC, ...).
* Batch-norm statistics: on task c's turn the networks' copy c of the moving statistics is selected (and
  only it is updated); :func:`evaluate` scores task c with copy c (see :mod:`dynamic_mtl.ttc.norms`).
* Only the trainable variables are updated, so frozen parts stay bit-identical. Variables that the
  current task's loss does not reach (the other tasks' heads) get a zero gradient; Adam's momentum still
  moves them a little on those turns (one traced step serves all tasks, the task is a tensor argument).
* Mixing scalars (betas / stitch weights) may use their own learning rate (``alpha_lr``); the paper does
  not give one.
* Metric (Sec. 4.1): the mean of the positive-class and negative-class accuracies.
* Cost: every step, forward pass and re-estimation runs as a traced graph: one train-step trace per trainer
  (a trainer created with ``reuse=`` an earlier trainer of the same model takes over its traced step and
  optimisers, reset), one inference trace and one re-estimation trace per model and image shape, whatever
  the batch sizes. A traced graph may round differently from op-by-op (eager) execution in the last bits.

Labels are an ``(N, T_data)`` integer array with 1 = positive, 0 = negative, -1 = not labelled for that
task (e.g. CIFAR-10 images of other classes).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf
from tqdm.auto import tqdm


def mean_class_accuracy(y_true, y_pred) -> float:
    """``(acc_p + acc_n) / 2`` (Sec. 4.1): mean of positive-class and negative-class accuracy.

    Args:
        y_true: binary labels (0/1).
        y_pred: binary predictions (0/1), same length.
    Raises:
        ValueError: on length mismatch, non-binary values, or when a class is absent from ``y_true``.
    """
    y_true = np.asarray(y_true).reshape(-1)
    y_pred = np.asarray(y_pred).reshape(-1)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true and y_pred differ in length: {y_true.shape} vs {y_pred.shape}")
    for name, arr in (("y_true", y_true), ("y_pred", y_pred)):
        if not np.isin(arr, (0, 1)).all():
            raise ValueError(f"{name} must be binary (0/1)")
    pos, neg = y_true == 1, y_true == 0
    if not pos.any() or not neg.any():
        raise ValueError("mean_class_accuracy needs both classes in y_true")
    return float(0.5 * ((y_pred[pos] == 1).mean() + (y_pred[neg] == 0).mean()))


class TaskPool:
    """One task's training pool (Sec. 4.1): the indices labelled for the task, drawn in shuffled cycles.

    With ``resample=True`` positives and negatives cycle independently and each batch takes
    ``batch_size // 2`` positives and the rest negatives, i.e. the minority class is resampled (repeated)
    as often as needed to match the majority. With ``resample=False`` the task's labelled samples are drawn
    in their natural proportions.
    """

    def __init__(self, labels, rng: np.random.Generator, resample: bool = True):
        labels = np.asarray(labels).reshape(-1)
        self.resample = bool(resample)
        self._rng = rng
        if self.resample:
            groups = [np.flatnonzero(labels == 1), np.flatnonzero(labels == 0)]
            if any(len(g) == 0 for g in groups):
                raise ValueError("a resampled pool needs at least one positive and one negative sample")
        else:
            groups = [np.flatnonzero(labels >= 0)]
            if len(groups[0]) == 0:
                raise ValueError("the task has no labelled samples")
        self._groups = groups
        self._orders = [rng.permutation(g) for g in groups]
        self._cursors = [0] * len(groups)

    def _take(self, k: int, n: int) -> np.ndarray:
        out = []
        while n > 0:
            order = self._orders[k]
            if self._cursors[k] >= len(order):
                self._orders[k] = order = self._rng.permutation(self._groups[k])
                self._cursors[k] = 0
            chunk = order[self._cursors[k] : self._cursors[k] + n]
            self._cursors[k] += len(chunk)
            out.append(chunk)
            n -= len(chunk)
        return np.concatenate(out) if out else np.zeros((0,), dtype=int)

    def next_batch(self, batch_size: int) -> np.ndarray:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if not self.resample:
            return self._take(0, batch_size)
        n_pos = batch_size // 2
        return self._rng.permutation(np.concatenate([self._take(0, n_pos), self._take(1, batch_size - n_pos)]))


@dataclass
class TrainSettings:
    """Optimisation settings of one training phase (the paper gives none of these values)."""

    batch_size: int = 32
    lr: float = 1e-3
    alpha_lr: float = 0.1  # Adam rate of the betas; the experiments choose it on the validation split
    resample: bool = True


class _Adam(keras.optimizers.Adam):
    """``keras.optimizers.Adam`` (default options) with each variable's update as one fused kernel
    (``ResourceApplyAdam``) and the step's scalars computed once per step. The update is Keras' (Kingma & Ba,
    Algorithm 1 with the bias correction folded into the rate ``lr * sqrt(1 - beta_2^t) / (1 - beta_1^t)``,
    epsilon added to ``sqrt(v)``), written as ``m <- beta_1 m + (1 - beta_1) g`` instead of
    ``m <- m + (1 - beta_1)(g - m)``, so it agrees with Keras to float32 rounding, not bit for bit. A 5-task
    TTC network has 160 trainable variables: the fused update removes about a quarter of the traced step's
    operations, which makes tracing, and every step, cheaper (``benchmarks/ttc.py``). Under a distribution
    strategy, or with options that change the update, Keras' own path is used."""

    def _backend_update_step(self, grads, trainable_variables, learning_rate):
        dtypes = {v.dtype for v in trainable_variables}
        if self.amsgrad or self.weight_decay or tf.distribute.has_strategy() or len(dtypes) != 1:
            return super()._backend_update_step(grads, trainable_variables, learning_rate)
        (dtype,) = dtypes
        local_step = tf.cast(self.iterations + 1, dtype)
        beta_1, beta_2 = tf.constant(self.beta_1, dtype), tf.constant(self.beta_2, dtype)
        scalars = dict(
            beta1_power=tf.pow(beta_1, local_step),
            beta2_power=tf.pow(beta_2, local_step),
            lr=tf.cast(learning_rate, dtype),
            beta1=beta_1,
            beta2=beta_2,
            epsilon=tf.constant(self.epsilon, dtype),
        )
        for gradient, variable in zip(grads, trainable_variables):
            index = self._get_variable_index(variable)
            tf.raw_ops.ResourceApplyAdam(
                var=variable.handle,
                m=self._momentums[index].handle,
                v=self._velocities[index].handle,
                grad=tf.cast(gradient, dtype),
                **scalars,
            )


def _mixing_variable_ids(model) -> set[int]:
    getter = getattr(model, "mixing_variables", None)
    return {id(v) for v in getter()} if callable(getter) else set()


class TurnTrainer:
    """Trains ``model`` with tasks taking turns, each from its own pool (Sec. 4.1).

    Args:
        model: a built network whose output column c is model task c.
        images: ``(N, H, W, C)`` float32.
        labels: ``(N, T_data)`` ints in {-1, 0, 1}.
        label_columns: for each model output column, its column in ``labels``.
        train_columns: the model columns that take turns (default all).
        settings: :class:`TrainSettings`.
        seed: seeds the pools' sampling (task c's pool: ``default_rng([seed, label_columns[c]])``).
        record_batches: keep every drawn batch's indices in ``batches`` (a list of (column, indices)).
        reuse: an earlier trainer of the same ``model`` (same trainable variables, batch size and image
            shape) whose traced step and optimisers this one takes over, the optimisers reset to a fresh
            state (step 0, zero moments, this trainer's learning rates): the updates are those of a new
            trainer, without tracing the step again. Meant for a model whose weights the caller has reset
            (e.g. to a freshly initialised copy's) to train it again.

    Only the model's trainable variables at construction time are optimised (freeze before creating it).
    """

    def __init__(
        self,
        model,
        images: np.ndarray,
        labels: np.ndarray,
        label_columns: Sequence[int],
        train_columns: Sequence[int] | None = None,
        settings: TrainSettings | None = None,
        seed: int = 0,
        record_batches: bool = False,
        reuse: TurnTrainer | None = None,
    ):
        self.model = model
        self.images = np.asarray(images, dtype="float32")
        self.labels = np.asarray(labels)
        if self.labels.ndim != 2 or len(self.labels) != len(self.images):
            raise ValueError("labels must be (N, T_data) with N = len(images)")
        self.label_columns = [int(c) for c in label_columns]
        self.train_columns = list(range(len(self.label_columns))) if train_columns is None else list(train_columns)
        self.settings = settings or TrainSettings()
        if int(seed) < 0:
            raise ValueError(f"seed must be >= 0, got {seed}")
        self.pools = {
            c: TaskPool(
                self.labels[:, self.label_columns[c]],
                np.random.default_rng([int(seed), self.label_columns[c]]),
                resample=self.settings.resample,
            )
            for c in self.train_columns
        }
        self.batches: list[tuple[int, np.ndarray]] | None = [] if record_batches else None
        mixing = _mixing_variable_ids(model)
        variables = list(model.trainable_variables)
        self.weight_vars = [v for v in variables if id(v) not in mixing]
        self.mixing_vars = [v for v in variables if id(v) in mixing]
        self._step: Callable | None = None
        self.step_count = 0
        if reuse is not None:
            self._take_over(reuse)
            return
        self.opt_w = _Adam(self.settings.lr, name="adam")
        self.opt_a = _Adam(self.settings.alpha_lr, name="adam")
        if self.weight_vars:
            self.opt_w.build(self.weight_vars)
        if self.mixing_vars:
            self.opt_a.build(self.mixing_vars)

    def _take_over(self, other: TurnTrainer) -> None:
        """Takes ``other``'s traced step and optimisers (see ``reuse``), reset to a fresh optimiser state."""
        same = (
            other.model is self.model
            and [id(v) for v in other.weight_vars] == [id(v) for v in self.weight_vars]
            and [id(v) for v in other.mixing_vars] == [id(v) for v in self.mixing_vars]
            and other.settings.batch_size == self.settings.batch_size
            and other.images.shape[1:] == self.images.shape[1:]
        )
        if not same:
            raise ValueError(
                "reuse needs a trainer of the same model with the same trainable variables, batch size and image shape"
            )
        self.opt_w, self.opt_a, self._step = other.opt_w, other.opt_a, other._step
        for opt, rate in ((self.opt_w, self.settings.lr), (self.opt_a, self.settings.alpha_lr)):
            _reset_optimizer(opt, rate)

    def tracing_count(self) -> int:
        """How many times the train step has been traced (0 before the first step; a trainer that took over
        another's step counts that step's traces)."""
        return 0 if self._step is None else int(self._step.experimental_get_tracing_count())

    def _make_step(self) -> Callable:
        """One traced step for all columns (the column is a tensor argument: one trace per trainer)."""
        model, wv, av = self.model, self.weight_vars, self.mixing_vars
        opt_w, opt_a = self.opt_w, self.opt_a
        shape = (self.settings.batch_size, *self.images.shape[1:])

        @tf.function(
            input_signature=[
                tf.TensorSpec(shape, tf.float32),
                tf.TensorSpec((shape[0],), tf.float32),
                tf.TensorSpec((), tf.int32),
            ]
        )
        def step(x, y, column):
            select_statistics(model, column)
            with tf.GradientTape() as tape:
                logits = tf.gather(model(x, training=True), column, axis=1)
                loss = tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=y, logits=logits))
            grads = tape.gradient(loss, wv + av)
            for opt, variables, gs in ((opt_w, wv, grads[: len(wv)]), (opt_a, av, grads[len(wv) :])):
                pairs = [(g, v) for g, v in zip(gs, variables) if g is not None]
                if pairs:
                    opt.apply([g for g, _ in pairs], [v for _, v in pairs])
            return loss

        return step

    def train(
        self,
        steps: int,
        callback: Callable[[int], None] | None = None,
        every: int = 0,
        desc: str = "train",
        progress: bool = True,
    ) -> list[float]:
        """Runs ``steps`` turns; calls ``callback(step_count)`` every ``every`` steps (and at the end)."""
        losses = []
        bs = self.settings.batch_size
        for _ in tqdm(range(int(steps)), desc=desc, disable=not progress, leave=False, mininterval=2.0):
            column = self.train_columns[self.step_count % len(self.train_columns)]
            if self._step is None:
                self._step = self._make_step()
            idx = self.pools[column].next_batch(bs)
            if self.batches is not None:
                self.batches.append((column, idx))
            y = self.labels[idx, self.label_columns[column]].astype("float32")
            losses.append(float(self._step(self.images[idx], y, np.int32(column))))
            self.step_count += 1
            if callback is not None and every and self.step_count % every == 0:
                callback(self.step_count)
        if callback is not None and (not every or self.step_count % every != 0):
            callback(self.step_count)
        return losses


def _reset_optimizer(optimizer, learning_rate: float) -> None:
    """A built Keras optimiser back to its state before the first step: every variable zero (step count,
    moments), the learning rate ``learning_rate``."""
    rate = getattr(optimizer, "_learning_rate", None)
    for variable in optimizer.variables:
        if variable is rate:
            variable.assign(learning_rate)
        else:
            variable.assign(keras.ops.zeros(variable.shape, variable.dtype))


def select_statistics(model, task) -> None:
    """Selects task ``task``'s batch-norm statistics copy, if ``model`` has per-task copies (int or tensor)."""
    setter = getattr(model, "set_statistics_copy", None)
    if callable(setter):
        setter(task)


def has_task_statistics(model) -> bool:
    """Whether ``model`` keeps one batch-norm statistics copy per task (and has more than one task)."""
    return bool(getattr(model, "per_task_statistics", False)) and getattr(model, "num_tasks", 1) > 1


def reestimate_statistics(
    model, images, labels, label_columns: Sequence[int], tasks: Sequence[int] | None = None, batch_size: int = 64
) -> None:
    """Re-estimates the batch-norm statistics from training images, no gradient step (frozen layers too).

    With per-task copies, copy c is the exact mean of the batch moments over the images labelled for model
    task c (in batches of ``batch_size``, every branch normalising with its batch moments as in training);
    with one shared copy, over the images labelled for any of ``tasks``. ``tasks``: model columns (default
    all).
    """
    images = np.asarray(images, dtype="float32")
    labels = np.asarray(labels)
    tasks = list(range(len(label_columns))) if tasks is None else list(tasks)
    layers = list(model.statistics_layers()) if hasattr(model, "statistics_layers") else []
    if not layers:
        raise ValueError("the model has no TaskBatchNormalization layers to re-estimate")
    if has_task_statistics(model):
        groups = [(c, np.flatnonzero(labels[:, label_columns[c]] >= 0)) for c in tasks]
    else:
        groups = [(0, np.flatnonzero((labels[:, [label_columns[c] for c in tasks]] >= 0).any(axis=1)))]
    estimate = _cached(_ESTIMATORS, model, images.shape[1:], lambda: _make_estimator(model, images.shape[1:]))
    for copy, idx in groups:
        if len(idx) == 0:
            raise ValueError(f"no training images labelled for task {copy}")
        select_statistics(model, copy)
        seen = 0
        for start in range(0, len(idx), batch_size):
            chunk = idx[start : start + batch_size]
            seen += len(chunk)
            estimate(images[chunk], np.float32(len(chunk) / seen))


#: Per model (weakly held): {image shape: traced function}.
_PREDICTORS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_ESTIMATORS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _cached(table: weakref.WeakKeyDictionary, model, shape, make: Callable) -> Callable:
    per_model = table.setdefault(model, {})
    key = tuple(int(d) for d in shape)
    if key not in per_model:
        per_model[key] = make()
    return per_model[key]


def _make_estimator(model, shape) -> Callable:
    """A traced training-mode forward pass with every statistics layer re-estimating at a rate given as a
    tensor (:meth:`TaskBatchNormalization.estimating`), for batches of any size of ``shape`` images."""
    ref = weakref.ref(model)

    @tf.function(input_signature=[tf.TensorSpec((None, *shape), tf.float32), tf.TensorSpec((), tf.float32)])
    def estimate(x, rate):
        net = ref()
        layers = list(net.statistics_layers())
        for layer in layers:
            layer.estimating(rate)
        try:
            net(x, training=True)
        finally:
            for layer in layers:
                layer.estimating(None)

    return estimate


def make_predictor(model, input_shape: Sequence[int] | None = None) -> Callable:
    """A traced inference-mode forward pass of ``model``: one trace for every batch size of ``input_shape``
    (``(H, W, C)``) images, or, without it, traced again for a second batch shape, then shape-relaxed.
    :func:`predict_logits` and :func:`evaluate` keep one per model and image shape."""
    ref = weakref.ref(model)
    signature = None if input_shape is None else [tf.TensorSpec((None, *input_shape), tf.float32)]
    return tf.function(lambda x: ref()(x, training=False), input_signature=signature, reduce_retracing=True)


def model_predictor(model, input_shape: Sequence[int]) -> Callable:
    """The traced inference pass :func:`predict_logits` uses for ``model`` and ``(H, W, C)`` images (created
    on first use, then kept as long as the model lives)."""
    return _cached(_PREDICTORS, model, input_shape, lambda: make_predictor(model, tuple(input_shape)))


def predict_logits(
    model,
    images: np.ndarray,
    batch_size: int = 256,
    predictor: Callable | None = None,
    tasks: Sequence[int] | None = None,
) -> np.ndarray:
    """Inference-mode logits ``(N, T_model)``; column c is computed with task c's batch-norm statistics copy
    (one pass per task if the model keeps per-task copies; ``tasks`` limits the passes, the other columns are
    then NaN). ``predictor``: the forward pass (default: the model's traced one, :func:`model_predictor`)."""
    images = np.asarray(images, dtype="float32")
    forward = predictor or model_predictor(model, images.shape[1:])

    def run() -> np.ndarray:
        out = [
            keras.ops.convert_to_numpy(forward(images[i : i + batch_size])) for i in range(0, len(images), batch_size)
        ]
        return np.concatenate(out, axis=0)

    if not has_task_statistics(model):
        select_statistics(model, 0)
        return run()
    logits = np.full((len(images), model.num_tasks), np.nan, dtype="float32")
    for c in range(model.num_tasks) if tasks is None else tasks:
        select_statistics(model, c)
        logits[:, c] = run()[:, c]
    return logits


def evaluate(
    model,
    images,
    labels,
    label_columns: Sequence[int],
    batch_size: int = 256,
    predictor: Callable | None = None,
    tasks: Sequence[int] | None = None,
) -> np.ndarray:
    """Per model task: mean class accuracy on the samples labelled for it (NaN if a class is missing, or if
    the task is not in ``tasks``)."""
    labels = np.asarray(labels)
    logits = predict_logits(model, images, batch_size, predictor, tasks=tasks)
    scores = []
    for c, col in enumerate(label_columns):
        if tasks is not None and c not in tasks:
            scores.append(float("nan"))
            continue
        mask = labels[:, col] >= 0
        y = labels[mask, col]
        if not (y == 1).any() or not (y == 0).any():
            scores.append(float("nan"))
            continue
        scores.append(mean_class_accuracy(y, (logits[mask, c] > 0).astype(int)))
    return np.asarray(scores)
