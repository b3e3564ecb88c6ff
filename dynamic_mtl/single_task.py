"""Section 5.3: the single-task face network (trunk + BRANCH 1) and the model that pretrains it.

Ming et al. pretrain "a single-task network constituted of the sharing hidden layers and the
BRANCH 1" for face verification with L1 (softmax + center loss), then train the multi-task network
from it (:mod:`dynamic_mtl.transfer` copies the weights).

* :func:`build_single_task_network` builds that network with exactly the layer names of
  :func:`dynamic_mtl.builders.build_face_expression_network` (it is the sub-graph of the full network
  from the image to ``shared``, ``embedding`` and ``identity_logits``; no expression layers).
* :class:`SingleTaskFaceModel` trains it: ``L1 = CE + alpha * center loss`` (Eq. 2-4) + weight decay,
  one optimizer, center update as in :class:`dynamic_mtl.model.DynamicMultiTaskModel`; correct under
  ``tf.distribute`` (per-replica loss divided by the replica count, centers all-reduced).
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import ops

from dynamic_mtl.builders import build_face_expression_network
from dynamic_mtl.compat import tape_values
from dynamic_mtl.custom_step import CustomStepModel
from dynamic_mtl.losses import CenterLoss, sparse_softmax_cross_entropy
from dynamic_mtl.replicas import num_replicas

#: Output keys of the single-task network (a subset of the multi-task network's outputs).
SINGLE_TASK_OUTPUTS = ("shared", "bottleneck", "embedding", "identity_logits")


def build_single_task_network(
    num_identities: int,
    backbone: str = "inception_resnet_v1_reduced",
    image_size: int = 160,
    channels: int = 3,
    embedding_size: int | None = 128,
    dropout_rate: float = 0.5,
    weight_decay: float = 5e-5,
    synchronized_batchnorm: bool = False,
    backbone_options: dict | None = None,
    name: str = "face_verification_network",
) -> keras.Model:
    """Trunk + BRANCH 1 with the multi-task network's layer names; outputs ``shared``, ``bottleneck``,
    ``embedding``, ``identity_logits``.

    Arguments as :func:`dynamic_mtl.builders.build_face_expression_network` (``backbone_options``, e.g.
    ``{"width": 16}`` for ``small_cnn``, must match the multi-task model the weights are transferred to).
    """
    full = build_face_expression_network(
        num_identities,
        2,
        backbone=backbone,
        image_size=image_size,
        channels=channels,
        embedding_size=embedding_size,
        expression_hidden=0,
        dropout_rate=dropout_rate,
        weight_decay=weight_decay,
        synchronized_batchnorm=synchronized_batchnorm,
        backbone_options=backbone_options,
    )
    return keras.Model(full.input, {k: full.output[k] for k in SINGLE_TASK_OUTPUTS}, name=name)


@keras.saving.register_keras_serializable(package="dynamic_mtl")
class SingleTaskFaceModel(CustomStepModel):
    """Trains a network with outputs ``embedding`` and ``identity_logits`` by L1 (Eq. 2).

    Labels: ``y`` is the identity label tensor or a dict holding it under ``label_key``.

    Args:
        network: functional model (e.g. :func:`build_single_task_network`).
        center_loss_weight: alpha of Eq. 2 (0 disables the center loss).
        center_update_rate, center_loss_squared: as in :class:`dynamic_mtl.losses.CenterLoss`.
        center_loss_input: the output the center loss reads: ``"bottleneck"`` (X1, the paper) or
            ``"embedding"`` (the authors' code), as in :func:`dynamic_mtl.builders.face_expression_tasks`.
    """

    def __init__(
        self,
        network: keras.Model,
        center_loss_weight: float = 1e-4,
        center_update_rate: float = 0.5,
        center_loss_squared: bool = True,
        label_key: str = "identity",
        center_loss_input: str = "bottleneck",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if isinstance(network, dict):
            network = keras.saving.deserialize_keras_object(network)
        self.network = network
        outputs = network.output
        if not isinstance(outputs, dict) or not {"embedding", "identity_logits", center_loss_input} <= set(outputs):
            raise ValueError(
                f"the network must return a dict with 'embedding', 'identity_logits' and "
                f"{center_loss_input!r} (the center loss input)"
            )
        self.center_loss_input = center_loss_input
        self.center_loss_weight = float(center_loss_weight)
        self.center_update_rate = float(center_update_rate)
        self.center_loss_squared = bool(center_loss_squared)
        self.label_key = label_key
        self.num_identities = int(outputs["identity_logits"].shape[-1])
        self.center_loss = CenterLoss(
            self.num_identities,
            int(outputs[center_loss_input].shape[-1]),
            update_rate=center_update_rate,
            squared=center_loss_squared,
            name="center_loss_identity",
        )
        self.center_loss.build()
        self._trackers = {name: keras.metrics.Mean(name=name) for name in ("loss", "softmax_loss", "center_loss")}
        self._trackers["accuracy"] = keras.metrics.SparseCategoricalAccuracy(name="accuracy")
        self.built = True

    def call(self, inputs, training=False):
        return self.network(inputs, training=training)

    def _labels(self, y):
        return y[self.label_key] if isinstance(y, dict) else y

    def _l1_terms(self, x, labels, training):
        outputs = self(x, training=training)
        softmax = sparse_softmax_cross_entropy(labels, outputs["identity_logits"])
        if self.center_loss_weight > 0:
            center = self.center_loss.per_sample(outputs[self.center_loss_input], labels)
        else:
            center = ops.zeros_like(softmax)
        return outputs, softmax, center

    def train_step(self, data):
        x, y, _ = keras.utils.unpack_x_y_sample_weight(data)
        labels = self._labels(y)
        replicas = num_replicas()
        variables = self.network.trainable_variables
        with tf.GradientTape() as tape:
            outputs, softmax, center = self._l1_terms(x, labels, True)
            data_loss = ops.mean(softmax + self.center_loss_weight * center)
            regularization = self.network_regularization()
            scaled = (data_loss + regularization) / replicas  # gradients are summed over replicas
        gradients = tape.gradient(scaled, tape_values(variables))
        self.optimizer.apply_gradients(zip(gradients, variables))
        if self.center_loss_weight > 0:
            self.center_loss.update(outputs[self.center_loss_input], labels)
        return self._track(data_loss + regularization, softmax, center, labels, outputs)

    def test_step(self, data):
        x, y, _ = keras.utils.unpack_x_y_sample_weight(data)
        labels = self._labels(y)
        outputs, softmax, center = self._l1_terms(x, labels, False)
        return self._track(ops.mean(softmax + self.center_loss_weight * center), softmax, center, labels, outputs)

    def _track(self, loss, softmax, center, labels, outputs):
        self._trackers["loss"].update_state(loss)
        self._trackers["softmax_loss"].update_state(ops.mean(softmax))
        self._trackers["center_loss"].update_state(ops.mean(center))
        self._trackers["accuracy"].update_state(labels, outputs["identity_logits"])
        return self.tracked_logs()

    def predict_step(self, data):
        x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        return {"embedding": self(x, training=False)["embedding"]}

    def compile(self, optimizer="rmsprop", **kwargs):
        """Compile with one optimizer, built on the network's variables (call inside ``strategy.scope()``)."""
        if "loss" in kwargs:
            raise ValueError("SingleTaskFaceModel computes its own loss (L1); do not pass loss=")
        super().compile(optimizer=keras.optimizers.get(optimizer), **kwargs)
        self.optimizer.build(self.network.trainable_variables)

    def get_config(self):
        return {
            "name": self.name,
            "network": keras.saving.serialize_keras_object(self.network),
            "center_loss_weight": self.center_loss_weight,
            "center_update_rate": self.center_update_rate,
            "center_loss_squared": self.center_loss_squared,
            "label_key": self.label_key,
            "center_loss_input": self.center_loss_input,
        }
