"""``build_face_expression_model``: trunk -> Z -> weight unit, branch 1 (face), branch 2 (expression)."""

from __future__ import annotations

import keras
from keras import layers

from dynamic_mtl.backbones import ConvSettings, get_backbone
from dynamic_mtl.layers import L2Normalize
from dynamic_mtl.model import DynamicMultiTaskModel
from dynamic_mtl.tasks import TaskSpec
from dynamic_mtl.weighting import get_weighting

FACE_TASK = "identity"
EXPRESSION_TASK = "expression"


def build_face_expression_network(
    num_identities: int,
    num_expressions: int,
    backbone: str = "inception_resnet_v1_reduced",
    image_size: int = 160,
    channels: int = 3,
    embedding_size: int | None = 128,
    expression_hidden: int = 128,
    dropout_rate: float = 0.5,
    weight_decay: float = 5e-5,
    synchronized_batchnorm: bool = False,
    backbone_options: dict | None = None,
    name: str = "face_expression_network",
) -> keras.Model:
    """The functional network of Figure 1, returning a dict of named outputs.

    Outputs: ``shared`` (Z, the flat output of the last shared layer), ``bottleneck`` (X1 of
    branch 1, Eq. 2-4), ``embedding`` (L2-normalised X1, float32), ``identity_logits``,
    ``expression_logits``.

    Branch 1: backbone branch -> dropout -> bottleneck ``embedding_size`` (None: use the
    pooled features, as the authors' code does) -> identity softmax logits.
    Branch 2: backbone branch -> dropout -> FC ``expression_hidden`` + ReLU -> expression logits.
    ``backbone_options`` go to the backbone's trunk and branch functions (e.g. ``{"width": 16}``
    for ``small_cnn``).
    """
    if num_identities < 2 or num_expressions < 2:
        raise ValueError(f"need >= 2 identities and expressions, got {num_identities}, {num_expressions}")
    spec = get_backbone(backbone)
    if image_size < spec.min_image_size:
        raise ValueError(f"backbone {backbone!r} needs image_size >= {spec.min_image_size}, got {image_size}")
    settings = ConvSettings(weight_decay=weight_decay, synchronized_batchnorm=synchronized_batchnorm)
    reg = settings.regularizer()

    inputs = keras.Input((image_size, image_size, channels), name="image")
    backbone_options = dict(backbone_options or {})
    shared_map = spec.trunk(inputs, settings, **backbone_options)
    z = layers.Flatten(name="shared")(shared_map)

    face = spec.branch(shared_map, settings, name="face", **backbone_options)
    face = layers.Dropout(dropout_rate, name="face_dropout")(face)
    if embedding_size:
        face = layers.Dense(embedding_size, kernel_regularizer=reg, name="face_bottleneck")(face)
    embedding = L2Normalize(name="embedding")(face)
    identity_logits = layers.Dense(num_identities, kernel_regularizer=reg, name="identity_logits")(face)

    expr = spec.branch(shared_map, settings, name="expression", **backbone_options)
    expr = layers.Dropout(dropout_rate, name="expression_dropout")(expr)
    if expression_hidden:
        expr = layers.Dense(expression_hidden, activation="relu", kernel_regularizer=reg, name="expression_hidden")(
            expr
        )
    expression_logits = layers.Dense(num_expressions, kernel_regularizer=reg, name="expression_logits")(expr)

    outputs = {
        "shared": z,
        "bottleneck": face,
        "embedding": embedding,
        "identity_logits": identity_logits,
        "expression_logits": expression_logits,
    }
    return keras.Model(inputs, outputs, name=name)


#: Where the face task's center loss is computed: the paper's X1 or the authors' normalised embedding.
CENTER_LOSS_INPUTS = ("bottleneck", "embedding")


def face_expression_tasks(
    center_loss_weight: float = 1e-4,
    center_update_rate: float = 0.5,
    center_loss_squared: bool = True,
    center_loss_input: str = "bottleneck",
) -> list[TaskSpec]:
    """Task 1: face verification (softmax + center loss, Eq. 2); task 2: expression (softmax).

    ``center_loss_input``: ``"bottleneck"`` (X1 of Eq. 4, the paper, with alpha 1e-4) or
    ``"embedding"`` (the L2-normalised X1, the authors' code, with alpha 0.1); docs/fidelity.md row 9.
    """
    if center_loss_input not in CENTER_LOSS_INPUTS:
        raise ValueError(f"center_loss_input must be one of {CENTER_LOSS_INPUTS}, got {center_loss_input!r}")
    return [
        TaskSpec(
            FACE_TASK,
            logits="identity_logits",
            embedding="embedding",
            center_loss_weight=center_loss_weight,
            center_update_rate=center_update_rate,
            center_loss_squared=center_loss_squared,
            center_loss_input=center_loss_input,
        ),
        TaskSpec(EXPRESSION_TASK, logits="expression_logits"),
    ]


def build_face_expression_model(
    num_identities: int,
    num_expressions: int,
    backbone: str = "inception_resnet_v1_reduced",
    image_size: int = 160,
    weighting="dynamic",
    weighting_options: dict | None = None,
    weight_unit_options: dict | None = None,
    center_loss_weight: float = 1e-4,
    center_update_rate: float = 0.5,
    center_loss_squared: bool = True,
    center_loss_input: str = "bottleneck",
    model_class=DynamicMultiTaskModel,
    **network_options,
) -> DynamicMultiTaskModel:
    """The multi-task face verification + expression model of Ming et al. 2019.

    Args:
        num_identities: identities in the training set (branch 1 softmax).
        num_expressions: expression classes (branch 2 softmax).
        backbone: ``"inception_resnet_v1_reduced"`` (paper) or ``"small_cnn"`` (fast).
        image_size: input side in pixels (paper: 160).
        weighting: ``"dynamic"`` (proposed, with Section 5.5's normalisation), ``"naive_dynamic"``, ``"static"``,
            ``"uncertainty"``, ``"gradnorm"``, ``"dwa"`` or a ``WeightingStrategy``.
        weighting_options: keyword arguments of the strategy (e.g. ``{"weights": [1, 0]}``).
        weight_unit_options: keyword arguments of ``DynamicWeightUnit``.
        center_loss_weight: alpha of Eq. 2 (paper: 1e-4; authors' code: 0.1).
        center_loss_input: ``"bottleneck"`` (paper's X1) or ``"embedding"`` (authors' code).
        model_class: a ``DynamicMultiTaskModel`` subclass to instantiate.
        **network_options: forwarded to ``build_face_expression_network``.
    """
    network = build_face_expression_network(
        num_identities, num_expressions, backbone=backbone, image_size=image_size, **network_options
    )
    tasks = face_expression_tasks(center_loss_weight, center_update_rate, center_loss_squared, center_loss_input)
    strategy = get_weighting(weighting, num_tasks=len(tasks), **(weighting_options or {}))
    unit = strategy.make_weight_unit(len(tasks), **(weight_unit_options or {}))
    return model_class(
        network,
        tasks,
        weighting=strategy,
        weight_unit=unit,
        shared_layer_name=get_backbone(backbone).shared_layer,
        name="dynamic_mtl_model",
    )
