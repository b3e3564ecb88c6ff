"""Section 5.3: the single-task face network (trunk + BRANCH 1), and its transfer into the multi-task model.

Ming et al. pretrain "a single-task network constituted of the sharing hidden layers and the
BRANCH 1" for face verification with L1 (softmax + center loss), then train the multi-task network
from it; the expression branch is trained "by transferring the learning of the pretrained BRANCH 1".

* :func:`build_single_task_network` builds that network with exactly the layer names of
  :func:`dynamic_mtl.builders.build_face_expression_network` (it is the sub-graph of the full network
  from the image to ``shared``, ``embedding`` and ``identity_logits``; no expression layers).
* :class:`SingleTaskFaceModel` trains it: ``L1 = CE + alpha * center loss`` (Eq. 2-4) + weight decay,
  one optimizer, center update as in :class:`dynamic_mtl.model.DynamicMultiTaskModel`; correct under
  ``tf.distribute`` (per-replica loss divided by the replica count, centers all-reduced).
* :func:`load_pretrained` copies the weights, by layer name, into a multi-task model's network and
  initialises each ``expression_*`` layer from its ``face_*`` counterpart where the shapes match.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import keras
import tensorflow as tf
from keras import ops

from dynamic_mtl.builders import build_face_expression_network
from dynamic_mtl.losses import CenterLoss, sparse_softmax_cross_entropy

#: Output keys of the single-task network (a subset of the multi-task network's outputs).
SINGLE_TASK_OUTPUTS = ("shared", "bottleneck", "embedding", "identity_logits")
FACE_PREFIX, EXPRESSION_PREFIX = "face_", "expression_"


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


def _replicas() -> int:
    context = tf.distribute.get_replica_context()
    return context.num_replicas_in_sync if context is not None else 1


@keras.saving.register_keras_serializable(package="dynamic_mtl")
class SingleTaskFaceModel(keras.Model):
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

    @property
    def metrics(self):
        return list(self._trackers.values())

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
        replicas = _replicas()
        variables = self.network.trainable_variables
        with tf.GradientTape() as tape:
            outputs, softmax, center = self._l1_terms(x, labels, True)
            data_loss = ops.mean(softmax + self.center_loss_weight * center)
            regularization = ops.sum(ops.stack(self.network.losses)) if self.network.losses else 0.0
            scaled = (data_loss + regularization) / replicas  # gradients are summed over replicas
        gradients = tape.gradient(scaled, [v.value for v in variables])
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
        return {name: tracker.result() for name, tracker in self._trackers.items()}

    def predict_step(self, data):
        x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        return {"embedding": self(x, training=False)["embedding"]}

    def compile(self, optimizer="rmsprop", **kwargs):
        """Compile with one optimizer, built on the network's variables (call inside ``strategy.scope()``)."""
        if "loss" in kwargs:
            raise ValueError("SingleTaskFaceModel computes its own loss (L1); do not pass loss=")
        super().compile(optimizer=keras.optimizers.get(optimizer), **kwargs)
        self.optimizer.build(self.network.trainable_variables)

    def get_compile_config(self):
        if not self.compiled:
            return None
        return {
            "optimizer": keras.optimizers.serialize(self.optimizer),
            "steps_per_execution": self.steps_per_execution,
            "jit_compile": self.jit_compile,
        }

    def compile_from_config(self, config):
        config = dict(config)
        config["optimizer"] = keras.optimizers.deserialize(config["optimizer"])
        self.compile(**config)

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

    @classmethod
    def from_config(cls, config):
        return cls(**config)


# ---------------------------------------------------------------------------------------- transfer
@dataclass
class TransferReport:
    """What :func:`load_pretrained` did, layer by layer."""

    checkpoint: str
    copied: list[str] = field(default_factory=list)  # same name, same shapes
    from_face: list[tuple[str, str]] = field(default_factory=list)  # (expression_* layer, face_* source)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (layer, reason): in both, not copied
    not_in_checkpoint: list[str] = field(default_factory=list)  # target layers left as initialised
    unused: list[str] = field(default_factory=list)  # checkpoint layers absent from the target
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.as_dict(), indent=2))
        return path

    def summary(self) -> str:
        lines = [
            f"transfer from {self.checkpoint}: {len(self.copied)} layers copied, "
            f"{len(self.from_face)} expression layers initialised from face layers, "
            f"{len(self.skipped)} skipped, {len(self.not_in_checkpoint)} not in the checkpoint"
        ]
        lines += [f"  skipped {name}: {why}" for name, why in self.skipped]
        if self.not_in_checkpoint:
            lines.append(f"  not in checkpoint (kept as initialised): {', '.join(self.not_in_checkpoint)}")
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()


def _network_of(model) -> keras.Model:
    network = getattr(model, "network", None)
    return network if isinstance(network, keras.Model) else model


def load_network(checkpoint_path: str | Path) -> keras.Model:
    """The functional network stored at ``checkpoint_path``.

    Accepts a ``.keras`` file of a functional network (what ``dynamic-mtl pretrain`` exports), of a
    :class:`SingleTaskFaceModel` (an epoch checkpoint) or of a ``DynamicMultiTaskModel``; or a
    pretraining output folder (its ``network.keras``).
    """
    import dynamic_mtl.layers  # noqa: F401  (registers the custom layers)
    import dynamic_mtl.model  # noqa: F401

    path = Path(checkpoint_path)
    if path.is_dir():
        if not (path / "network.keras").is_file():
            raise FileNotFoundError(f"{path} is a folder without network.keras (a `dynamic-mtl pretrain --out` folder)")
        path = path / "network.keras"
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path} (run `make pretrain` or `dynamic-mtl pretrain`)")
    if path.suffix != ".keras":
        raise ValueError(f"{path}: expected a .keras file (layer names are needed to transfer by name)")
    model = keras.saving.load_model(path, compile=False, safe_mode=True)
    return _network_of(model)


def _weight_shapes(layer) -> list[tuple]:
    return [tuple(w.shape) for w in layer.weights]


def load_pretrained(
    target_network_or_model, checkpoint_path: str | Path, expression_from_face: bool = True, strict: bool = True
) -> TransferReport:
    """Copy a pretrained trunk + BRANCH 1 into ``target_network_or_model``, by layer name.

    * Every target layer whose name and weight shapes match a checkpoint layer gets its weights
      (kernels, biases, batch-norm scale/offset and moving statistics).
    * ``identity_logits`` with a different class count (a new identity set) is skipped and reported.
    * With ``expression_from_face``, each ``expression_*`` layer that is not in the checkpoint is
      initialised from ``face_*`` (the same position in BRANCH 1) where the shapes match, as the authors
      did; the others (e.g. ``expression_hidden``, ``expression_logits``) keep their initialisation.
    * Center-loss centers and the dynamic weight unit are not transferred (noted in the report).

    ``target_network_or_model``: a ``DynamicMultiTaskModel`` (its ``network`` is loaded), a
    :class:`SingleTaskFaceModel` or a functional network. With ``strict`` (default) a trunk or
    BRANCH-1 layer that cannot be copied (other than ``identity_logits``) raises ``ValueError``,
    as does a checkpoint that shares no layer with the target (e.g. another backbone).
    """
    target = _network_of(target_network_or_model)
    source = load_network(checkpoint_path)
    report = TransferReport(str(checkpoint_path))
    src = {layer.name: layer for layer in source.layers if layer.weights}
    tgt = {layer.name: layer for layer in target.layers if layer.weights}
    done: set[str] = set()
    for name, layer in tgt.items():
        if name not in src:
            continue
        s_shapes, t_shapes = _weight_shapes(src[name]), _weight_shapes(layer)
        if s_shapes != t_shapes:
            if name == "identity_logits" and len(s_shapes) == len(t_shapes):
                why = f"class count differs: checkpoint {s_shapes[0][-1]}, model {t_shapes[0][-1]}"
            else:
                why = f"shape mismatch: checkpoint {s_shapes}, model {t_shapes}"
            report.skipped.append((name, why))
            continue
        layer.set_weights(src[name].get_weights())
        report.copied.append(name)
        done.add(name)
    if expression_from_face:
        for name, layer in tgt.items():
            if name in done or name in src or not name.startswith(EXPRESSION_PREFIX):
                continue
            face_name = FACE_PREFIX + name[len(EXPRESSION_PREFIX) :]
            if face_name in src and _weight_shapes(src[face_name]) == _weight_shapes(layer):
                layer.set_weights(src[face_name].get_weights())
                report.from_face.append((name, face_name))
                done.add(name)
    skipped_names = {n for n, _ in report.skipped}
    report.not_in_checkpoint = [n for n in tgt if n not in done and n not in skipped_names]
    report.unused = [n for n in src if n not in tgt]
    report.notes.append("center-loss centers and the dynamic weight unit are not transferred")
    if tuple(source.input.shape[1:]) != tuple(target.input.shape[1:]):
        report.notes.append(
            f"input shapes differ: checkpoint {tuple(source.input.shape[1:])}, "
            f"model {tuple(target.input.shape[1:])} (weights do not depend on the image size "
            "after global pooling, but the features were learnt at the checkpoint's size)"
        )
    if not report.copied:
        if set(src) & set(tgt) - {"identity_logits", "face_bottleneck"}:
            detail = "; ".join(f"{n}: {why}" for n, why in report.skipped[:4])
            raise ValueError(
                f"{checkpoint_path}: the layers match the model by name but not by shape ({detail}; ...). "
                "Build the model with the pretraining network options (backbone_options such as the "
                "small_cnn width, embedding_size, channels): see the checkpoint's .json sidecar."
            )
        raise ValueError(
            f"{checkpoint_path}: no layer of the checkpoint matches the model by name "
            f"(different backbone?). Checkpoint layers: {sorted(src)[:8]}..., "
            f"model layers: {sorted(tgt)[:8]}..."
        )
    if strict:
        missing = [n for n in tgt if n not in done and not n.startswith(EXPRESSION_PREFIX) and n != "identity_logits"]
        if missing:
            reasons = dict(report.skipped)
            detail = "; ".join(f"{n}: {reasons.get(n, 'not in checkpoint')}" for n in missing[:8])
            raise ValueError(
                f"{checkpoint_path}: {len(missing)} trunk / branch-1 layer(s) cannot be transferred "
                f"({detail}). Build the model with the pretraining network options (backbone, "
                f"embedding_size, channels), or pass strict=False to keep them as initialised."
            )
    return report
