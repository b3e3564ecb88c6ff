"""Per-sample task losses: softmax cross-entropy (Eq. 3) and the center loss (Eq. 4)."""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import ops

from dynamic_mtl.replicas import sum_over_replicas


def sparse_softmax_cross_entropy(labels, logits):
    """Per-sample softmax cross-entropy (Eq. 3), float32, shape (batch,)."""
    logits = ops.cast(logits, "float32")
    return keras.losses.sparse_categorical_crossentropy(ops.cast(labels, "int32"), logits, from_logits=True)


def sigmoid_cross_entropy(labels, logits):
    """Per-sample binary cross-entropy from logits, averaged over the labels, shape (batch,)."""
    logits = ops.cast(logits, "float32")
    return keras.losses.binary_crossentropy(ops.cast(labels, "float32"), logits, from_logits=True)


def squared_error(targets, predictions):
    """Per-sample squared error, averaged over the output's last axis, shape (batch,)."""
    return keras.losses.mean_squared_error(ops.cast(targets, "float32"), ops.cast(predictions, "float32"))


#: A task kind's loss when its ``TaskSpec`` names none.
DEFAULT_LOSSES = {
    "classification": sparse_softmax_cross_entropy,
    "multilabel": sigmoid_cross_entropy,
    "regression": squared_error,
}


def per_sample_loss(loss, kind: str, labels, outputs):
    """A task's per-sample loss, float32, shape (batch,).

    ``loss`` is a Keras loss object evaluated unreduced (its ``call``), or None for
    ``DEFAULT_LOSSES[kind]``. Labels of regression and multi-label tasks are reshaped to the
    output's shape when they lack its last axis of size 1.
    """
    if kind != "classification" and len(labels.shape) == len(outputs.shape) - 1:
        labels = ops.expand_dims(labels, -1)
    if loss is None:
        value = DEFAULT_LOSSES[kind](labels, outputs)
    else:
        if kind != "classification":
            labels = ops.cast(labels, "float32")
        value = loss.call(labels, ops.cast(outputs, "float32"))
    value = ops.cast(value, "float32")
    if len(value.shape) > 1:
        value = ops.mean(ops.reshape(value, (ops.shape(value)[0], -1)), axis=-1)
    return value


@keras.saving.register_keras_serializable(package="dynamic_mtl")
class CenterLoss(keras.layers.Layer):
    """Center loss of Wen et al. 2016 (Eq. 4), with non-trainable class centers.

    ``per_sample(x, y)`` returns ``||x - c_y||^2`` (``squared=True``, the authors' code and
    Wen et al.) or ``||x - c_y||`` (``squared=False``, Eq. 4 as printed in the paper).
    ``x`` is the bottleneck feature X1 (paper, Eq. 4) or the L2-normalised embedding (authors'
    code); see docs/fidelity.md, row 9.

    Centers are not trained by gradient. ``update(x, y)`` moves them as Wen et al.
    and the authors' code do: ``c_j -= rate * sum_{i: y_i=j} (c_j - x_i) / (1 + n_j)``,
    ``n_j`` the number of samples of class j in the (global) batch. Under
    ``tf.distribute`` the sums are all-reduced, so every replica applies the same update.
    """

    def __init__(self, num_classes: int, embedding_dim: int, update_rate: float = 0.5, squared: bool = True, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        if not 0.0 <= update_rate <= 1.0:
            raise ValueError(f"update_rate must lie in [0, 1], got {update_rate}")
        self.num_classes = int(num_classes)
        self.embedding_dim = int(embedding_dim)
        self.update_rate = float(update_rate)
        self.squared = bool(squared)

    def build(self, input_shape=None):
        self.centers = self.add_weight(
            name="centers",
            shape=(self.num_classes, self.embedding_dim),
            initializer="zeros",
            trainable=False,
            aggregation="only_first_replica",
        )
        self.built = True

    def per_sample(self, embeddings, labels):
        embeddings = ops.cast(embeddings, "float32")
        centers = ops.take(ops.stop_gradient(ops.convert_to_tensor(self.centers)), ops.cast(labels, "int32"), axis=0)
        squared = ops.sum(ops.square(embeddings - centers), axis=-1)
        return squared if self.squared else ops.sqrt(squared + 1e-12)

    def update(self, embeddings, labels, gate=1.0, sample_mask=None):
        """Move the centers toward this (global) batch's embeddings; ``gate`` 0.0 leaves them
        (a step the network optimizer skipped), 1.0 applies the update. ``sample_mask`` (batch,)
        is 1.0 for samples that have a label (default: all); the others move no center."""
        embeddings = tf.stop_gradient(tf.cast(embeddings, tf.float32))
        labels = tf.cast(tf.reshape(labels, [-1]), tf.int32)
        mask = (
            tf.ones_like(labels, tf.float32)
            if sample_mask is None
            else tf.cast(tf.reshape(sample_mask, [-1]), tf.float32)
        )
        centers = tf.convert_to_tensor(self.centers)
        diffs = (tf.gather(centers, labels) - embeddings) * mask[:, None]
        sums = tf.math.unsorted_segment_sum(diffs, labels, self.num_classes)
        counts = tf.math.unsorted_segment_sum(mask, labels, self.num_classes)
        sums, counts = sum_over_replicas([sums, counts])
        self.centers.assign(centers - tf.cast(gate, tf.float32) * self.update_rate * sums / (1.0 + counts[:, None]))

    def call(self, embeddings, labels):
        return self.per_sample(embeddings, labels)

    def get_config(self):
        config = super().get_config()
        config.update(
            num_classes=self.num_classes,
            embedding_dim=self.embedding_dim,
            update_rate=self.update_rate,
            squared=self.squared,
        )
        return config
