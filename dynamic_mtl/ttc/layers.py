"""Task-mixing layers: task transfer connections (Fang et al. 2017, Sec. 3) and cross-stitch units
(Misra et al. 2016).

Both layers take the T per-task feature maps of one layer, ``[h_1, ..., h_T]`` (equal shapes), and
return T mixed maps, each followed by its own batch normalisation::

    x_i = BN_i( sum_j A[i, j] * h_j )                                    (summed in the order j = 1..T)

They differ only in the mixing matrix ``A`` (row i = what task i receives):

* ``TaskTransferConnection``: ``A[i, i] = 1`` (a non-trainable weight) and, for ``j != i``,
  ``A[i, j] = alpha_ij = sigmoid(beta_ij)`` (paper Eq. 8), ``beta_ij`` trainable.
* ``CrossStitchUnit``: every entry of ``A`` is a free trainable scalar (Misra et al. Eq. 1), initialised
  to ``init_self`` on the diagonal and ``(1 - init_self) / (T - 1)`` elsewhere.

Each ``BN_i`` is a :class:`~dynamic_mtl.ttc.norms.TaskBatchNormalization` with, by default
(``per_task_statistics=True``), one copy of the moving statistics per task: on task c's turn only copy c is
updated, and task c is evaluated with copy c in every branch (:meth:`set_statistics_copy`).

A static 0/1 ``connectivity`` matrix removes connections from the graph altogether (``A[i, j]`` is then an
exact 0 and ``h_j`` is never read for task i), which is how incremental task addition keeps the old tasks'
outputs unchanged. The weights of row i (``beta_i`` / ``stitch_i``) and ``BN_i`` belong to task i, so they
can be frozen per task (:meth:`set_task_trainable`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import keras
import numpy as np
from keras import ops

from dynamic_mtl.ttc.norms import TaskBatchNormalization


def _as_connectivity(connectivity, num_tasks: int) -> list[list[int]]:
    """Validates a T x T 0/1 matrix (default all ones); the diagonal must be 1."""
    if connectivity is None:
        return [[1] * num_tasks for _ in range(num_tasks)]
    matrix = np.asarray(connectivity)
    if matrix.shape != (num_tasks, num_tasks):
        raise ValueError(f"connectivity must have shape ({num_tasks}, {num_tasks}), got {matrix.shape}")
    if not np.isin(matrix, (0, 1)).all():
        raise ValueError("connectivity must contain only 0 and 1")
    if not (np.diag(matrix) == 1).all():
        raise ValueError("connectivity must have ones on the diagonal (a task always reads its own map)")
    return matrix.astype(int).tolist()


class _TaskMixing(keras.layers.Layer):
    """Shared machinery: per-task batch norm, static connectivity, per-row weights, per-task freezing."""

    def __init__(
        self,
        num_tasks: int,
        connectivity: Sequence[Sequence[int]] | None = None,
        batch_norm: bool = True,
        bn_momentum: float = 0.9,
        bn_epsilon: float = 1e-3,
        per_task_statistics: bool = True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if int(num_tasks) < 1:
            raise ValueError(f"num_tasks must be >= 1, got {num_tasks}")
        self.num_tasks = int(num_tasks)
        self.connectivity = _as_connectivity(connectivity, self.num_tasks)
        self.batch_norm = bool(batch_norm)
        self.bn_momentum = float(bn_momentum)
        self.bn_epsilon = float(bn_epsilon)
        self.per_task_statistics = bool(per_task_statistics)
        copies = self.num_tasks if self.per_task_statistics else 1
        self.norms = (
            [
                TaskBatchNormalization(copies, momentum=self.bn_momentum, epsilon=self.bn_epsilon, name=f"bn_{i}")
                for i in range(self.num_tasks)
            ]
            if self.batch_norm
            else []
        )
        self.row_weights: list = []

    # -- weights -----------------------------------------------------------------------------------------
    def _row_initial_values(self, i: int) -> np.ndarray:
        raise NotImplementedError

    def _row_coefficients(self, i: int):
        """Row i of the mixing matrix as a length-T tensor (entries outside connectivity are ignored)."""
        raise NotImplementedError

    def build(self, input_shape):
        shapes = list(input_shape)
        if len(shapes) != self.num_tasks:
            raise ValueError(f"{self.name}: expected {self.num_tasks} per-task inputs, got {len(shapes)}")
        first = tuple(shapes[0])
        for shape in shapes[1:]:
            if tuple(shape)[1:] != first[1:]:
                raise ValueError(f"{self.name}: per-task inputs must have equal shapes, got {shapes}")
        self._build_rows()
        for norm in self.norms:
            norm.build(first)
        self.built = True

    def _build_rows(self) -> None:
        raise NotImplementedError

    # -- forward -------------------------------------------------------------------------------------------
    def mix_task(self, inputs, i: int, training=None):
        """``x_i = BN_i(sum_j A[i, j] h_j)`` over the connected j, in the order j = 0..T-1."""
        row = self._row_coefficients(i)
        mixed = None
        for j in range(self.num_tasks):
            if not self.connectivity[i][j]:
                continue
            term = row[j] * inputs[j]
            mixed = term if mixed is None else mixed + term
        if self.batch_norm:
            mixed = self.norms[i](mixed, training=training)
        return mixed

    def call(self, inputs, training=None):
        inputs = list(inputs)
        if len(inputs) != self.num_tasks:
            raise ValueError(f"{self.name}: expected {self.num_tasks} per-task inputs, got {len(inputs)}")
        return [self.mix_task(inputs, i, training=training) for i in range(self.num_tasks)]

    def compute_output_shape(self, input_shape):
        return [tuple(s) for s in input_shape]

    # -- analysis and control ------------------------------------------------------------------------------
    def mixing_matrix(self) -> np.ndarray:
        """The effective T x T matrix ``A`` (row i = receiving task); disconnected entries are 0."""
        rows = [ops.convert_to_numpy(self._row_coefficients(i)) for i in range(self.num_tasks)]
        return np.asarray(rows, dtype=np.float64) * np.asarray(self.connectivity, dtype=np.float64)

    @property
    def mixing_variables(self) -> list:
        """The trainable mixing scalars (betas or stitch weights), for a separate learning rate."""
        return list(self.row_weights)

    def set_statistics_copy(self, task) -> None:
        """Selects task ``task``'s copy of the moving statistics in every ``BN_i`` (int or int tensor)."""
        for norm in self.norms:
            norm.set_copy(task)

    def set_task_trainable(self, i: int, trainable: bool, norms: bool | None = None) -> None:
        """Freezes / unfreezes what belongs to task i: its incoming row of ``A`` and (``norms``, default
        ``trainable``) ``BN_i``.

        A frozen BN runs in inference mode (Keras semantics), so its statistics stay fixed too.
        """
        self.row_weights[i].trainable = bool(trainable)
        if self.batch_norm:
            self.norms[i].trainable = bool(trainable if norms is None else norms)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            num_tasks=self.num_tasks,
            connectivity=self.connectivity,
            batch_norm=self.batch_norm,
            bn_momentum=self.bn_momentum,
            bn_epsilon=self.bn_epsilon,
            per_task_statistics=self.per_task_statistics,
        )
        return config


@keras.saving.register_keras_serializable(package="dynamic_mtl")
class TaskTransferConnection(_TaskMixing):
    """Task transfer connection (TTC) of one layer (Fang et al. 2017, Sec. 3, Eq. 8, Algorithm 1).

    Forward, for each receiving task i (inputs ``h_j``: the T tasks' maps of this layer)::

        x_i = BN_i( h_i + sum_{j != i, C[i,j]=1} sigmoid(beta_ij) * h_j )

    ``alpha_ii = 1`` is a non-trainable weight (``alpha_diag``); ``beta_ij`` are trainable (``beta_i`` holds
    row i); ``C`` is the static connectivity (default all ones).

    The two limits of Sec. 3:

    * ``alpha_ij = 0`` for ``i != j`` (``C = I``, or ``beta -> -inf``): ``x_i = BN_i(h_i)``, so task i's
      output depends only on its own subnet and input -- T independent single-task networks.
    * all ``alpha`` equal (necessarily to ``alpha_ii = 1``, ``beta -> +inf``): every task receives the same
      sum ``s = sum_j h_j``, so all tasks share one representation at every layer. The per-task layers
      then act as one shared layer T times as wide whose outputs are summed (``BN_i``'s affine part is
      absorbed into the next per-task weights), i.e. a hard-shared trunk with task-specific output heads:
      the conventional MTL network. With equal BN parameters the per-task features are identical.

    Args:
        num_tasks: T (>= 1).
        connectivity: optional static T x T 0/1 matrix, ones on the diagonal.
        initial_alpha: initial value of every off-diagonal alpha, in (0, 1) (paper: unspecified; 0.5).
        batch_norm: apply ``BN_i`` after mixing (paper: yes, "to relieve the range fluctuation").
        bn_momentum, bn_epsilon: of the per-task batch norms.
    """

    def __init__(self, num_tasks: int, connectivity=None, initial_alpha: float = 0.5, **kwargs):
        super().__init__(num_tasks, connectivity=connectivity, **kwargs)
        initial_alpha = float(initial_alpha)
        if not 0.0 < initial_alpha < 1.0:
            raise ValueError(f"initial_alpha must lie in (0, 1), got {initial_alpha}")
        self.initial_alpha = initial_alpha

    def _build_rows(self) -> None:
        beta0 = math.log(self.initial_alpha / (1.0 - self.initial_alpha))
        self.row_weights = [
            self.add_weight(
                name=f"beta_{i}",
                shape=(self.num_tasks,),
                initializer=keras.initializers.Constant(beta0),
                trainable=True,
            )
            for i in range(self.num_tasks)
        ]
        self.alpha_diag = self.add_weight(
            name="alpha_diag", shape=(self.num_tasks,), initializer="ones", trainable=False
        )

    def _row_coefficients(self, i: int):
        # The diagonal comes from the non-trainable alpha_diag; beta_i[i] is never read (no gradient).
        own = ops.one_hot(i, self.num_tasks, dtype=self.row_weights[i].dtype)
        return own * self.alpha_diag[i] + (1.0 - own) * ops.sigmoid(self.row_weights[i])

    def alpha_matrix(self) -> np.ndarray:
        """The T x T matrix of alpha_ij (row i receives from column j); ones on the diagonal."""
        return self.mixing_matrix()

    def set_alpha(self, alpha) -> None:
        """Sets off-diagonal alphas (T x T array; diagonal ignored) via ``beta = logit(alpha)``.

        Values are clipped to [1e-7, 1 - 1e-7]; in float32 ``sigmoid(logit(1 - 1e-7))`` rounds to 1.0.
        """
        alpha = np.asarray(alpha, dtype=np.float64)
        if alpha.shape != (self.num_tasks, self.num_tasks):
            raise ValueError(f"alpha must have shape ({self.num_tasks}, {self.num_tasks}), got {alpha.shape}")
        if not self.built:
            raise RuntimeError("build the layer (call it once) before set_alpha")
        clipped = np.clip(alpha, 1e-7, 1 - 1e-7)
        beta = np.log(clipped) - np.log1p(-clipped)
        beta = np.where(alpha >= 1.0, 40.0, np.where(alpha <= 0.0, -40.0, beta))
        for i, weight in enumerate(self.row_weights):
            weight.assign(beta[i].astype("float32"))

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(initial_alpha=self.initial_alpha)
        return config


@keras.saving.register_keras_serializable(package="dynamic_mtl")
class CrossStitchUnit(_TaskMixing):
    """Cross-stitch unit (Misra et al. 2016, Eq. 1) generalised to T tasks, followed by per-task BN.

    ``x_i = BN_i( sum_j a_ij * h_j )`` with every ``a_ij`` (diagonal included) a free trainable scalar,
    initialised to ``init_self`` on the diagonal and ``(1 - init_self) / (T - 1)`` elsewhere (Misra:
    (0.9, 0.1) for two tasks). The BN is our addition, so that TTC and cross-stitch networks differ only in
    how the mixing matrix is parametrised.
    """

    def __init__(self, num_tasks: int, connectivity=None, init_self: float = 0.9, **kwargs):
        super().__init__(num_tasks, connectivity=connectivity, **kwargs)
        self.init_self = float(init_self)

    def _build_rows(self) -> None:
        T = self.num_tasks
        other = (1.0 - self.init_self) / (T - 1) if T > 1 else 0.0
        self.row_weights = []
        for i in range(T):
            init = np.full((T,), other, dtype="float32")
            init[i] = self.init_self
            self.row_weights.append(
                self.add_weight(
                    name=f"stitch_{i}",
                    shape=(T,),
                    initializer=keras.initializers.Constant(init),
                    trainable=True,
                )
            )

    def _row_coefficients(self, i: int):
        return self.row_weights[i]

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(init_self=self.init_self)
        return config
