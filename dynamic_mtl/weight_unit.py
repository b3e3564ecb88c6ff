"""The dynamic weight unit of Ming et al. 2019 (Section 3, Eq. 5-6)."""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="dynamic_mtl")
class DynamicWeightUnit(keras.layers.Layer):
    """Maps the shared representation Z to per-sample task weights.

    ``f_i(Z) = psi_i . Z + b_i`` (Eq. 6, no ReLU) and ``w_i = softmax_i(f(Z))`` (Eq. 5).
    The layer returns the per-sample softmax, shape ``(batch, num_tasks)``; the model
    uses its batch mean as ``w_i``, as the authors' code does.

    Args:
        num_tasks: T, the number of tasks (>= 2).
        normalize_inputs: L2-normalise Z per sample before the dense map (authors' code;
            default True). Keeps ``|f_i|`` bounded by ``|psi_i| + |b_i|``.
        normalize_logits: L2-normalise the logits ``f`` across tasks before the softmax.
            This is the normalisation of Section 5.5 that keeps ``a_i = exp(f_i)`` small so the
            gradient of Eq. 8 does not vanish. For T = 2 it bounds w to [0.197, 0.803]
            (sigmoid of +-sqrt(2)). Default True: the paper's method (docs/fidelity.md, row 4).
            False gives the authors' published code (softmax of the raw logits).
        clamp: optional ``(low, high)`` clip of the per-sample weights (authors' older
            variant clamps the batch-mean w1 to (0.01, 0.99)). The clipped weights are
            renormalised to sum to 1 (a no-op for T = 2; for T >= 3 a weight may then end
            slightly outside the bounds). Clipped samples pass no gradient through the clip.
        init_stddev: stddev of the truncated-normal kernel init (authors: 0.1). Bias is zero.
    """

    def __init__(
        self,
        num_tasks: int,
        normalize_inputs: bool = True,
        normalize_logits: bool = True,
        clamp: tuple[float, float] | None = None,
        init_stddev: float = 0.1,
        **kwargs,
    ):
        kwargs.setdefault("dtype", "float32")  # stays float32 under mixed precision
        super().__init__(**kwargs)
        if int(num_tasks) < 2:
            raise ValueError(f"DynamicWeightUnit needs num_tasks >= 2, got {num_tasks}")
        if clamp is not None:
            low, high = (float(c) for c in clamp)
            if not 0.0 <= low < high <= 1.0:
                raise ValueError(f"clamp must satisfy 0 <= low < high <= 1, got {clamp}")
            clamp = (low, high)
        if init_stddev < 0:
            raise ValueError(f"init_stddev must be >= 0, got {init_stddev}")
        self.num_tasks = int(num_tasks)
        self.normalize_inputs = bool(normalize_inputs)
        self.normalize_logits = bool(normalize_logits)
        self.clamp = clamp
        self.init_stddev = float(init_stddev)

    def build(self, input_shape):
        feature_dim = 1
        for d in input_shape[1:]:
            if d is None:
                raise ValueError(f"DynamicWeightUnit needs a static feature shape, got {input_shape}")
            feature_dim *= int(d)
        self.kernel = self.add_weight(
            name="psi",
            shape=(feature_dim, self.num_tasks),
            initializer=keras.initializers.TruncatedNormal(stddev=self.init_stddev)
            if self.init_stddev > 0
            else "zeros",
            autocast=False,  # read in float32 even inside a mixed_float16 model's call
        )
        self.bias = self.add_weight(name="bias", shape=(self.num_tasks,), initializer="zeros", autocast=False)

    def compute_logits(self, z):
        """``f_i(Z)`` of Eq. 6 (before any logit normalisation)."""
        z = ops.cast(ops.reshape(z, (ops.shape(z)[0], -1)), self.compute_dtype)
        if self.normalize_inputs:
            z = z / ops.sqrt(ops.maximum(ops.sum(ops.square(z), axis=-1, keepdims=True), 1e-12))
        return ops.matmul(z, self.kernel) + self.bias

    def weights_from_logits(self, logits):
        """Per-sample softmax of Eq. 5, with the optional Section 5.5 normalisation and clamp."""
        if self.normalize_logits:
            norm = ops.sqrt(ops.maximum(ops.sum(ops.square(logits), axis=-1, keepdims=True), 1e-12))
            logits = logits / norm
        weights = ops.softmax(logits, axis=-1)
        if self.clamp is not None:
            weights = ops.clip(weights, self.clamp[0], self.clamp[1])
            weights = weights / ops.sum(weights, axis=-1, keepdims=True)
        return weights

    def call(self, z):
        return self.weights_from_logits(self.compute_logits(z))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.num_tasks)

    def get_config(self):
        config = super().get_config()
        config.update(
            num_tasks=self.num_tasks,
            normalize_inputs=self.normalize_inputs,
            normalize_logits=self.normalize_logits,
            clamp=list(self.clamp) if self.clamp is not None else None,
            init_stddev=self.init_stddev,
        )
        return config
