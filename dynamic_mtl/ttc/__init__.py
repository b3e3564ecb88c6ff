"""Task transfer connections: the dynamic multi-task CNN of Fang et al. 2017 (see docs/ttc.md).

Layers (Sec. 3): :class:`TaskTransferConnection`, :class:`CrossStitchUnit` (Misra et al. 2016).
Networks (Sec. 4.1): :class:`TTCNetwork`, :class:`CrossStitchNetwork`, :class:`SharedTrunkNetwork`,
:class:`SingleTaskNetwork`; :func:`add_task` (Sec. 3 / 4.4) and :func:`remove_tasks` (Sec. 4.3).
Training (Sec. 4.1-4.2): :class:`TurnTrainer`, :class:`TrainSettings`, :class:`TaskPool`,
:func:`mean_class_accuracy`, :func:`evaluate`, :func:`reestimate_statistics`.
Per-task batch-norm statistics: :class:`TaskBatchNormalization`. Influence shares (Figure 4, Table 6):
:func:`influence_shares`, :func:`removal_share_change`.
"""

from dynamic_mtl.ttc.layers import CrossStitchUnit, TaskTransferConnection
from dynamic_mtl.ttc.models import (
    CrossStitchNetwork,
    SharedTrunkNetwork,
    SingleTaskNetwork,
    TTCNetwork,
    add_task,
    remove_tasks,
)
from dynamic_mtl.ttc.norms import TaskBatchNormalization
from dynamic_mtl.ttc.shares import influence_shares, removal_share_change
from dynamic_mtl.ttc.training import (
    TaskPool,
    TrainSettings,
    TurnTrainer,
    evaluate,
    make_predictor,
    mean_class_accuracy,
    predict_logits,
    reestimate_statistics,
)

__all__ = [
    "CrossStitchNetwork",
    "CrossStitchUnit",
    "SharedTrunkNetwork",
    "SingleTaskNetwork",
    "TTCNetwork",
    "TaskPool",
    "TaskTransferConnection",
    "TrainSettings",
    "TurnTrainer",
    "add_task",
    "evaluate",
    "make_predictor",
    "mean_class_accuracy",
    "predict_logits",
    "remove_tasks",
    "TaskBatchNormalization",
    "influence_shares",
    "removal_share_change",
    "reestimate_statistics",
]
