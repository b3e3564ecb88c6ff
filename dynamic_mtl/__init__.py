"""dynamic_mtl: dynamic multi-task learning (Ming et al. 2019) in TensorFlow 2 / Keras 3.

Public API::

    import dynamic_mtl as dm
    model = dm.build_face_expression_model(num_identities=80, num_expressions=6,
                                           backbone="small_cnn", image_size=64, weighting="dynamic")
    model.compile(network_optimizer="rmsprop", weight_optimizer=dm.default_weight_optimizer())
    model.fit(dataset, epochs=2, callbacks=[dm.StepLogger("steps.csv")])

The package needs Keras's TensorFlow backend (the train step uses ``tf.GradientTape`` and
``tf.distribute``); importing it under another backend raises ``ImportError`` saying how to switch.
Importing it changes no environment variable (the ``dynamic-mtl`` command quiets TensorFlow's C++ log
itself).
"""

from __future__ import annotations

import keras as _keras

if _keras.backend.backend() != "tensorflow":
    raise ImportError(
        f"dynamic_mtl needs Keras's TensorFlow backend, but Keras is using {_keras.backend.backend()!r}: set "
        'KERAS_BACKEND=tensorflow (or "backend": "tensorflow" in ~/.keras/keras.json) before importing keras'
    )

from dynamic_mtl.builders import (  # noqa: E402
    EXPRESSION_TASK,
    FACE_TASK,
    build_face_expression_model,
    build_face_expression_network,
    face_expression_tasks,
)
from dynamic_mtl.callbacks import ModelSelection, StepLogger, StopOnDivergence, TrainingDiverged  # noqa: E402
from dynamic_mtl.distribute import make_strategy, use_logical_cpus  # noqa: E402
from dynamic_mtl.layers import L2Normalize, ScaledResidual  # noqa: E402
from dynamic_mtl.losses import CenterLoss, sparse_softmax_cross_entropy  # noqa: E402
from dynamic_mtl.model import (  # noqa: E402
    DEFAULT_WEIGHT_OPTIMIZER,
    DynamicMultiTaskModel,
    StepResult,
    default_weight_optimizer,
)
from dynamic_mtl.single_task import SingleTaskFaceModel, build_single_task_network  # noqa: E402
from dynamic_mtl.tasks import TaskSpec  # noqa: E402
from dynamic_mtl.transfer import load_pretrained  # noqa: E402
from dynamic_mtl.ttc import CrossStitchUnit, TaskTransferConnection, TTCNetwork  # noqa: E402
from dynamic_mtl.weight_unit import DynamicWeightUnit  # noqa: E402
from dynamic_mtl.weighting import (  # noqa: E402
    WEIGHTINGS,
    DynamicWeightAverageWeighting,
    DynamicWeighting,
    GradNormWeighting,
    NaiveDynamicWeighting,
    StaticWeighting,
    UncertaintyWeighting,
    WeightingStrategy,
    get_weighting,
)

__version__ = "0.1.0"


__all__ = [
    "build_face_expression_model",
    "build_face_expression_network",
    "face_expression_tasks",
    "FACE_TASK",
    "EXPRESSION_TASK",
    "StepLogger",
    "StopOnDivergence",
    "TrainingDiverged",
    "ModelSelection",
    "make_strategy",
    "use_logical_cpus",
    "L2Normalize",
    "ScaledResidual",
    "CenterLoss",
    "sparse_softmax_cross_entropy",
    "DynamicMultiTaskModel",
    "StepResult",
    "TaskSpec",
    "DynamicWeightUnit",
    "WEIGHTINGS",
    "WeightingStrategy",
    "StaticWeighting",
    "NaiveDynamicWeighting",
    "DynamicWeighting",
    "UncertaintyWeighting",
    "GradNormWeighting",
    "DynamicWeightAverageWeighting",
    "get_weighting",
    "default_weight_optimizer",
    "DEFAULT_WEIGHT_OPTIMIZER",
    "load_pretrained",
    "SingleTaskFaceModel",
    "build_single_task_network",
    "TaskTransferConnection",
    "TTCNetwork",
    "CrossStitchUnit",
]
