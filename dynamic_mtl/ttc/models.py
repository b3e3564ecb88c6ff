"""Networks of Fang et al. 2017 (Sec. 3 and 4.1): dynamic multi-task CNN (TTC), cross-stitch variant,
shared-trunk MTL and single-task baselines; incremental task addition and task removal (Sec. 3, 4.3, 4.4).

Every network maps an image batch ``(B, H, W, C)`` -- or, for the multi-subnet networks, a list of T
per-task batches (Eq. 4: ``F(X_1..X_n, W_1..W_n, alpha)``) -- to logits of shape ``(B, T)``, one binary
task per column (Eq. 6: sigmoid cross-entropy per task).

Subnet (Sec. 4.1): conv(40,5x5) - pool - conv(60,5x5) - pool - conv(80,3x3) - pool - conv(100,3x3) - pool -
conv(140,2x2) - FC 360 - output, ReLU. Convolutions and pools use 'same' padding, so any input size
>= 1 pixel works (pools halve, rounding up). ``width`` scales every filter count and the FC size.
In the multi-subnet networks a mixing layer (TTC or cross-stitch, each with per-task BN) follows each of
the 6 hidden layers (5 conv + FC); layer l's mixing feeds layer l+1 (the paper's "layer 6 to layer 7" TTC
is our ``connections[5]``). The output layer is per task and unmixed. The shared-trunk and single-task
networks use BN at the same places.

Batch-norm statistics (``per_task_statistics=True``, the default, for the TTC, cross-stitch and shared-trunk
networks): every batch norm keeps one copy of its moving statistics per task
(:class:`~dynamic_mtl.ttc.norms.TaskBatchNormalization`); task c's turn updates copy c only, and
:meth:`set_statistics_copy` (used by :mod:`dynamic_mtl.ttc.training`) selects the copy with which task c is
evaluated. ``per_task_statistics=False`` gives one shared copy, updated on every task's turn.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
from keras import ops

from dynamic_mtl.ttc.layers import CrossStitchUnit, TaskTransferConnection, _as_connectivity
from dynamic_mtl.ttc.norms import TaskBatchNormalization

PAPER_FILTERS = (40, 60, 80, 100, 140)
PAPER_KERNELS = (5, 5, 3, 3, 2)
PAPER_FC_UNITS = 360
NUM_HIDDEN_LAYERS = len(PAPER_FILTERS) + 1  # 5 conv + FC 360


def _scaled(n: int, width: float) -> int:
    return max(1, int(round(n * width)))


def _task_names(num_tasks: int, task_names) -> list[str]:
    if int(num_tasks) < 1:
        raise ValueError(f"num_tasks must be >= 1, got {num_tasks}")
    if task_names is None:
        return [f"task_{i}" for i in range(int(num_tasks))]
    names = [str(n) for n in task_names]
    if len(names) != int(num_tasks):
        raise ValueError(f"got {len(names)} task names for {num_tasks} tasks")
    if len(set(names)) != len(names):
        raise ValueError(f"task names must be unique, got {names}")
    return names


class _SubnetLayers:
    """The layers of one subnet (or of the shared trunk); a plain holder, tracked by the owning model."""

    def __init__(self, prefix: str, filters: Sequence[int], kernels: Sequence[int], fc_units: int):
        self.convs = [
            keras.layers.Conv2D(f, k, padding="same", activation="relu", name=f"{prefix}_conv{l + 1}")
            for l, (f, k) in enumerate(zip(filters, kernels))
        ]
        self.pools = [
            keras.layers.MaxPooling2D(2, padding="same", name=f"{prefix}_pool{l + 1}") for l in range(len(filters) - 1)
        ]
        self.flatten = keras.layers.Flatten(name=f"{prefix}_flatten")
        self.fc = keras.layers.Dense(fc_units, activation="relu", name=f"{prefix}_fc")

    def layer(self, l: int, x):
        """Hidden layer l (0..5) without its normalisation: conv[+pool] for l < 5, flatten+FC for l = 5."""
        if l < len(self.convs):
            x = self.convs[l](x)
            return self.pools[l](x) if l < len(self.pools) else x
        return self.fc(self.flatten(x))

    def all_layers(self) -> list:
        return [*self.convs, *self.pools, self.flatten, self.fc]


class _ArchitectureMixin:
    """Common constructor arguments and config of all networks in this module."""

    def _init_architecture(self, num_tasks, task_names, width, filters, kernels, fc_units):
        self.num_tasks = int(num_tasks)
        self.task_names = _task_names(num_tasks, task_names)
        if float(width) <= 0:
            raise ValueError(f"width must be > 0, got {width}")
        if len(filters) != len(kernels) or len(filters) < 1:
            raise ValueError("filters and kernels must be non-empty and of equal length")
        self.width = float(width)
        self.filters = tuple(int(f) for f in filters)
        self.kernels = tuple(int(k) for k in kernels)
        self.fc_units = int(fc_units)
        self._scaled_filters = [_scaled(f, self.width) for f in self.filters]
        self._scaled_fc = _scaled(self.fc_units, self.width)
        self._num_hidden = len(self.filters) + 1

    def _extra_config(self) -> dict:
        """Constructor arguments beyond the architecture's (per subclass)."""
        return {}

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            num_tasks=self.num_tasks,
            task_names=list(self.task_names),
            width=self.width,
            filters=list(self.filters),
            kernels=list(self.kernels),
            fc_units=self.fc_units,
            **self._extra_config(),
        )
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    @staticmethod
    def _image_shape(input_shape) -> tuple:
        shape = tuple(input_shape)
        if len(shape) != 4 or any(d is None for d in shape[1:]):
            raise ValueError(f"expected an image batch shape (B, H, W, C) with static H, W, C; got {shape}")
        return shape

    def task_index(self, task: str | int) -> int:
        if isinstance(task, (int, np.integer)):
            if not 0 <= int(task) < self.num_tasks:
                raise IndexError(f"task index {task} out of range for {self.num_tasks} tasks")
            return int(task)
        try:
            return self.task_names.index(task)
        except ValueError:
            raise KeyError(f"unknown task {task!r}; tasks are {self.task_names}") from None


class _MultiSubnetNetwork(_ArchitectureMixin, keras.Model):
    """One subnet per task, joined by a mixing layer after every hidden layer."""

    connection_class: type = TaskTransferConnection

    def __init__(
        self,
        num_tasks: int,
        task_names: Sequence[str] | None = None,
        width: float = 1.0,
        filters: Sequence[int] = PAPER_FILTERS,
        kernels: Sequence[int] = PAPER_KERNELS,
        fc_units: int = PAPER_FC_UNITS,
        connectivity=None,
        connection_kwargs: dict | None = None,
        per_task_statistics: bool = True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self._init_architecture(num_tasks, task_names, width, filters, kernels, fc_units)
        self.connectivity = _as_connectivity(connectivity, self.num_tasks)
        self.connection_kwargs = dict(connection_kwargs or {})
        self.per_task_statistics = bool(per_task_statistics)
        self.subnets = [
            _SubnetLayers(f"t{t}", self._scaled_filters, self.kernels, self._scaled_fc) for t in range(self.num_tasks)
        ]
        # Keras tracks layers assigned as attributes / lists of layers; flatten the holders into lists.
        self.subnet_layers = [s.all_layers() for s in self.subnets]
        self.heads = [keras.layers.Dense(1, name=f"t{t}_out") for t in range(self.num_tasks)]
        self.connections = [
            self.connection_class(
                self.num_tasks,
                connectivity=self.connectivity,
                name=f"mix{l + 1}",
                per_task_statistics=self.per_task_statistics,
                **self.connection_kwargs,
            )
            for l in range(self._num_hidden)
        ]

    def build(self, input_shape):
        if isinstance(input_shape, (list, tuple)) and input_shape and isinstance(input_shape[0], (list, tuple)):
            input_shape = input_shape[0]
        shape = self._image_shape(input_shape)
        # Building by tracing a one-sample forward pass in inference mode (no statistics change).
        self._forward([ops.zeros((1,) + shape[1:])] * self.num_tasks, training=False)
        self.built = True

    def _split_inputs(self, inputs) -> list:
        if isinstance(inputs, (list, tuple)):
            if len(inputs) != self.num_tasks:
                raise ValueError(f"expected {self.num_tasks} per-task inputs, got {len(inputs)}")
            return list(inputs)
        return [inputs] * self.num_tasks

    def _forward(self, xs: list, training=None, collect: bool = False):
        features = []
        for l in range(self._num_hidden):
            hs = [self.subnets[t].layer(l, xs[t]) for t in range(self.num_tasks)]
            xs = self.connections[l](hs, training=training)
            if collect:
                features.append(xs)
        logits = ops.concatenate([self.heads[t](xs[t]) for t in range(self.num_tasks)], axis=-1)
        return (logits, features) if collect else logits

    def call(self, inputs, training=None):
        return self._forward(self._split_inputs(inputs), training=training)

    def task_features(self, inputs, training=False) -> list[list]:
        """The mixed (post-BN) per-task features after each hidden layer: ``[layer][task] -> tensor``."""
        return self._forward(self._split_inputs(inputs), training=training, collect=True)[1]

    def alpha_matrices(self) -> np.ndarray:
        """Effective mixing matrices, shape ``(layers, T, T)``; ``[l, i, j]`` = weight of task j's map in
        task i's input to layer l+2 (TTC: alpha_ij, ones on the diagonal)."""
        return np.stack([c.mixing_matrix() for c in self.connections])

    def mixing_variables(self) -> list:
        return [v for c in self.connections for v in c.mixing_variables]

    def set_statistics_copy(self, task) -> None:
        """Selects task ``task``'s copy of the batch-norm statistics everywhere (int or int tensor)."""
        for c in self.connections:
            c.set_statistics_copy(task)

    def statistics_layers(self) -> list[TaskBatchNormalization]:
        return [n for c in self.connections for n in c.norms]

    def task_layers(self, task: str | int) -> list:
        t = self.task_index(task)
        return [*self.subnet_layers[t], self.heads[t]]

    def set_task_trainable(
        self, task: str | int, trainable: bool = True, connections: bool | None = None, norms: bool | None = None
    ):
        """Freezes / unfreezes task t's subnet and head, (``connections``, default = ``trainable``) its
        incoming mixing row, and (``norms``, default = ``connections``) its BN in every layer."""
        t = self.task_index(task)
        connections = bool(trainable if connections is None else connections)
        for layer in self.task_layers(t):
            layer.trainable = bool(trainable)
        for c in self.connections:
            c.set_task_trainable(t, connections, norms=connections if norms is None else bool(norms))

    def _extra_config(self) -> dict:
        return dict(
            connectivity=self.connectivity,
            connection_kwargs=self.connection_kwargs,
            per_task_statistics=self.per_task_statistics,
        )


@keras.saving.register_keras_serializable(package="dynamic_mtl")
class TTCNetwork(_MultiSubnetNetwork):
    """Dynamic multi-task CNN (DMT CNN, Fang et al. 2017 Sec. 3, Fig. 1): one subnet per task, a
    :class:`TaskTransferConnection` after each hidden layer. Outputs logits ``(B, T)``.

    Args:
        num_tasks: T (any number >= 1).
        task_names: optional names (default ``task_0..``).
        width: multiplier of the paper's filter counts / FC size (1.0 = paper).
        filters, kernels, fc_units: the subnet (default: the paper's Sec. 4.1 values).
        connectivity: static T x T 0/1 matrix (default all ones; identity = independent nets).
        connection_kwargs: extra arguments of each TTC (``initial_alpha``, ``bn_momentum``, ...).
    """

    connection_class = TaskTransferConnection


@keras.saving.register_keras_serializable(package="dynamic_mtl")
class CrossStitchNetwork(_MultiSubnetNetwork):
    """The same subnets joined by :class:`CrossStitchUnit` (Misra et al. 2016) instead of TTCs."""

    connection_class = CrossStitchUnit


@keras.saving.register_keras_serializable(package="dynamic_mtl")
class SharedTrunkNetwork(_ArchitectureMixin, keras.Model):
    """Conventional multi-task CNN (MT CNN): one trunk of the subnet architecture (BN after each hidden
    layer) shared by all tasks, one output unit per task. Logits ``(B, T)``."""

    def __init__(
        self,
        num_tasks: int,
        task_names: Sequence[str] | None = None,
        width: float = 1.0,
        filters: Sequence[int] = PAPER_FILTERS,
        kernels: Sequence[int] = PAPER_KERNELS,
        fc_units: int = PAPER_FC_UNITS,
        bn_momentum: float = 0.9,
        per_task_statistics: bool = True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self._init_architecture(num_tasks, task_names, width, filters, kernels, fc_units)
        self.bn_momentum = float(bn_momentum)
        self.per_task_statistics = bool(per_task_statistics)
        self.trunk = _SubnetLayers("trunk", self._scaled_filters, self.kernels, self._scaled_fc)
        self.trunk_layers = self.trunk.all_layers()
        copies = self.num_tasks if self.per_task_statistics else 1
        self.norms = [
            TaskBatchNormalization(copies, momentum=self.bn_momentum, epsilon=1e-3, name=f"trunk_bn{l + 1}")
            for l in range(self._num_hidden)
        ]
        self.head = keras.layers.Dense(self.num_tasks, name="heads")

    def build(self, input_shape):
        shape = self._image_shape(input_shape)
        self.call(ops.zeros((1,) + shape[1:]), training=False)
        self.built = True

    def call(self, inputs, training=None):
        x = inputs
        for l in range(self._num_hidden):
            x = self.norms[l](self.trunk.layer(l, x), training=training)
        return self.head(x)

    def set_statistics_copy(self, task) -> None:
        """Selects task ``task``'s copy of the batch-norm statistics (int or int tensor)."""
        for norm in self.norms:
            norm.set_copy(task)

    def statistics_layers(self) -> list[TaskBatchNormalization]:
        return list(self.norms)

    def _extra_config(self) -> dict:
        return dict(bn_momentum=self.bn_momentum, per_task_statistics=self.per_task_statistics)


@keras.saving.register_keras_serializable(package="dynamic_mtl")
class SingleTaskNetwork(SharedTrunkNetwork):
    """Single-task CNN (ST CNN): the subnet with BN and one output; logits ``(B, 1)``."""

    def __init__(self, task_name: str = "task_0", **kwargs):
        kwargs.pop("num_tasks", None)
        kwargs.pop("task_names", None)
        kwargs.pop("per_task_statistics", None)
        super().__init__(num_tasks=1, task_names=[task_name], **kwargs)

    def get_config(self) -> dict:
        config = super().get_config()
        config.pop("num_tasks")
        config.pop("per_task_statistics", None)
        config["task_name"] = config.pop("task_names")[0]
        return config


# --------------------------------------------------------------------------------------------------------
# Incremental task addition (Sec. 3, Fig. 3; Sec. 4.4) and task removal (Sec. 4.3)
# --------------------------------------------------------------------------------------------------------
def _copy_task_weights(src: _MultiSubnetNetwork, s: int, dst: _MultiSubnetNetwork, d: int, rows) -> None:
    """Copies task s of ``src`` to task d of ``dst``: subnet, head and BN_s (statistics rows ``rows``)."""
    for a, b in zip(src.task_layers(s), dst.task_layers(d)):
        for va, vb in zip(a.weights, b.weights):
            vb.assign(va)
    for cs, cd in zip(src.connections, dst.connections):
        if cs.batch_norm:
            cd.norms[d].copy_statistics(cs.norms[s], rows)


def _statistics_rows(model: _MultiSubnetNetwork, tasks: list[int | None]) -> list[int | None]:
    """Which source statistics row each new task's copy comes from (one shared copy: row 0)."""
    return list(tasks) if model.per_task_statistics else [0]


def _same_kind_config(model: _MultiSubnetNetwork, names: list[str], connectivity) -> dict:
    config = model.get_config()
    for key in ("name", "trainable", "dtype"):
        config.pop(key, None)
    config.update(num_tasks=len(names), task_names=names, connectivity=connectivity)
    return config


def add_task(
    model: _MultiSubnetNetwork,
    task_name: str,
    input_shape: Sequence[int],
    connect_back: bool = False,
    freeze_old: bool = True,
) -> _MultiSubnetNetwork:
    """Returns a copy of ``model`` with one more task (Sec. 3, Fig. 3: incremental task transfer learning).

    The old subnets, heads, mixing rows and BNs are copied and (``freeze_old``) frozen; the new task's
    subnet, head and incoming connections ``alpha_{new, j}`` are fresh and trainable. With per-task
    statistics, the old BNs' copy for the new task starts as the mean of their old copies (frozen BNs do not
    update it; :func:`dynamic_mtl.ttc.training.reestimate_statistics` can estimate it on the new task's
    images without touching the old tasks' copies). With
    ``connect_back=False`` (default) the old tasks do not read the new task's maps (``C[old, new] = 0``), so
    their outputs stay exactly what they were; ``connect_back=True`` adds those connections with their
    initial alpha, trainable only if ``freeze_old`` is False.

    Args:
        model: a built :class:`TTCNetwork` or :class:`CrossStitchNetwork`.
        task_name: name of the new task (must be new).
        input_shape: image shape ``(H, W, C)`` to build the new model with.
    """
    if not model.built:
        raise ValueError("add_task needs a built (trained) model")
    if task_name in model.task_names:
        raise ValueError(f"task {task_name!r} already exists")
    T = model.num_tasks
    conn = np.zeros((T + 1, T + 1), dtype=int)
    conn[:T, :T] = np.asarray(model.connectivity)
    conn[T, :] = 1
    conn[:T, T] = 1 if connect_back else 0
    new = type(model).from_config(_same_kind_config(model, [*model.task_names, task_name], conn.tolist()))
    new.build((None, *input_shape))
    rows = _statistics_rows(model, [*range(T), None])
    for t in range(T):
        _copy_task_weights(model, t, new, t, rows)
        if model.per_task_statistics and model.connections[0].batch_norm:
            for c in new.connections:  # the new task's copy starts as the old copies' mean
                norm = c.norms[t]
                for table in (norm.moving_mean, norm.moving_variance):
                    values = ops.convert_to_numpy(table).copy()
                    values[T] = values[:T].mean(axis=0)
                    table.assign(values)
        for cs, cd in zip(model.connections, new.connections):
            old_row = ops.convert_to_numpy(cs.row_weights[t])
            row = ops.convert_to_numpy(cd.row_weights[t]).copy()
            row[:T] = old_row
            cd.row_weights[t].assign(row)
    if freeze_old:
        for t in range(T):
            new.set_task_trainable(t, False)
    return new


def remove_tasks(
    model: _MultiSubnetNetwork,
    drop: Sequence[str],
    input_shape: Sequence[int],
    freeze_subnets: bool = True,
    train_norms: bool = True,
) -> _MultiSubnetNetwork:
    """Returns a copy of ``model`` without the tasks in ``drop`` (Sec. 4.3, "tasks removal").

    Kept subnets, heads, mixing rows (restricted to kept columns) and BNs (statistics copies of the kept
    tasks) are copied. With ``freeze_subnets`` the subnets and heads are frozen and only the connections
    stay trainable, so re-training "reconnects the incomplete model": the mixing rows (betas), and with
    ``train_norms`` also the BNs after the mixings (their affine parameters and statistics). The paper
    re-trains "the TTC"; ``train_norms=False`` is the narrow reading (betas only).
    """
    if not model.built:
        raise ValueError("remove_tasks needs a built (trained) model")
    unknown = [d for d in drop if d not in model.task_names]
    if unknown:
        raise KeyError(f"cannot remove unknown tasks {unknown}; tasks are {model.task_names}")
    keep = [t for t, n in enumerate(model.task_names) if n not in set(drop)]
    if not keep:
        raise ValueError("cannot remove every task")
    conn = np.asarray(model.connectivity)[np.ix_(keep, keep)]
    new = type(model).from_config(_same_kind_config(model, [model.task_names[t] for t in keep], conn.tolist()))
    new.build((None, *input_shape))
    rows = _statistics_rows(model, keep)
    for d, s in enumerate(keep):
        _copy_task_weights(model, s, new, d, rows)
        for cs, cd in zip(model.connections, new.connections):
            cd.row_weights[d].assign(ops.convert_to_numpy(cs.row_weights[s])[keep])
    if freeze_subnets:
        for d in range(len(keep)):
            new.set_task_trainable(d, False, connections=True, norms=train_norms)
    return new
