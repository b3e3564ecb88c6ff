"""Task specifications: which network output a task reads and how its loss is built."""
from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class TaskSpec:
    """One task of a multi-task model.

    Args:
        name: task name; also the key of its labels in the ``y`` dict of the dataset.
        logits: key of the task's logits in the network's output dict.
        embedding: key of an (L2-normalised) embedding output (returned by ``predict``).
        center_loss_weight: alpha of Eq. 2 (0 disables the center loss).
        center_loss_input: key of the feature the center loss is computed on (Eq. 4's X1);
            None: the ``embedding``.
        center_update_rate: center update rate (authors' code: 0.5).
        center_loss_squared: squared distance (authors' code, default) or Eq. 4's norm.
    """

    name: str
    logits: str
    embedding: str | None = None
    center_loss_weight: float = 0.0
    center_update_rate: float = 0.5
    center_loss_squared: bool = True
    center_loss_input: str | None = None

    def __post_init__(self):
        if self.center_loss_weight < 0:
            raise ValueError(f"task {self.name!r}: center_loss_weight must be >= 0")
        if self.center_loss_weight > 0 and not self.center_feature:
            raise ValueError(f"task {self.name!r}: a center loss needs a `center_loss_input` or `embedding` "
                             "output key")

    @property
    def center_feature(self) -> str | None:
        """The network output the center loss reads."""
        return self.center_loss_input or self.embedding

    def get_config(self) -> dict:
        return asdict(self)

    @classmethod
    def from_config(cls, config: dict) -> "TaskSpec":
        return cls(**config)
