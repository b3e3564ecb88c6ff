"""Task specifications: which network output a task reads, its Keras loss and metrics, its kind."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import keras

#: What ``kind`` decides: the post-processing of ``predict`` and the missing-label sentinel.
KINDS = ("classification", "regression", "multilabel")

#: Loss names (lower case, underscores removed) whose task kind is known without ``kind=``.
_LOSS_KINDS = {
    "sparsecategoricalcrossentropy": "classification",
    "sparsecategoricalfocalcrossentropy": "classification",
    "binarycrossentropy": "multilabel",
    "binaryfocalcrossentropy": "multilabel",
    "meansquarederror": "regression",
    "mse": "regression",
    "meanabsoluteerror": "regression",
    "mae": "regression",
    "huber": "regression",
    "logcosh": "regression",
    "meansquaredlogarithmicerror": "regression",
    "msle": "regression",
    "meanabsolutepercentageerror": "regression",
    "mape": "regression",
}


def _loss_name(loss) -> str:
    if isinstance(loss, str):
        name = loss
    elif isinstance(loss, dict):
        name = loss.get("class_name", "")
        if name == "function":
            name = loss.get("config", "")
    elif isinstance(loss, keras.losses.Loss):
        name = type(loss).__name__
        if name == "LossFunctionWrapper":
            name = getattr(getattr(loss, "fn", None), "__name__", name)
    else:
        name = getattr(loss, "__name__", "")
    return str(name).lower().replace("_", "")


def _serialize(obj):
    """A string stays a string; a Keras object becomes its config dict (JSON-able)."""
    if obj is None or isinstance(obj, (str, dict)):
        return obj
    return keras.saving.serialize_keras_object(obj)


class _PerSampleFunction:
    """A loss function ``fn(y_true, y_pred) -> (batch,)`` with the ``call`` of a Keras loss."""

    def __init__(self, fn):
        self.fn = fn

    def call(self, y_true, y_pred):
        return self.fn(y_true, y_pred)


@dataclass(frozen=True)
class TaskSpec:
    """One task of a multi-task model.

    Args:
        name: task name; also the key of its labels (and of its sample weights) in ``y``.
        logits: key of the task's output in the network's output dict (logits for
            classification and multi-label tasks, predicted values for regression).
        embedding: key of an (L2-normalised) embedding output (returned by ``predict``).
        center_loss_weight: alpha of Eq. 2 (0 disables the center loss); classification only.
        center_loss_input: key of the feature the center loss is computed on (Eq. 4's X1);
            None: the ``embedding``.
        center_update_rate: center update rate (authors' code: 0.5).
        center_loss_squared: squared distance (authors' code, default) or Eq. 4's norm.
        loss: a Keras loss (object, name or config); default: sparse categorical cross-entropy
            from logits (Eq. 3) for classification, binary cross-entropy from logits for
            multi-label, mean squared error for regression. It is evaluated per sample.
        metrics: Keras metrics (objects, names or configs), fed the ``predict`` outputs
            (probabilities or values); default ``("accuracy",)`` for classification and
            multi-label tasks, none for regression. Logged as ``<task>_<metric name>``.
        kind: ``"classification"``, ``"regression"`` or ``"multilabel"``; None: inferred from
            ``loss`` (classification when no loss is given). It decides ``predict``'s
            post-processing (softmax / identity / sigmoid) and the missing-label sentinel:
            -1 for integer labels, NaN for float labels.
    """

    name: str
    logits: str
    embedding: str | None = None
    center_loss_weight: float = 0.0
    center_update_rate: float = 0.5
    center_loss_squared: bool = True
    center_loss_input: str | None = None
    loss: Any = None
    metrics: Any = None
    kind: str | None = None
    _resolved_kind: str = field(default="", init=False, repr=False, compare=False)

    def __post_init__(self):
        kind = self.kind
        if kind is None:
            if self.loss is None:
                kind = "classification"
            else:
                kind = _LOSS_KINDS.get(_loss_name(self.loss))
                if kind is None:
                    raise ValueError(
                        f"task {self.name!r}: cannot infer the task kind from loss {self.loss!r}; "
                        f"pass kind= (one of {KINDS})"
                    )
        if kind not in KINDS:
            raise ValueError(f"task {self.name!r}: kind must be one of {KINDS}, got {kind!r}")
        object.__setattr__(self, "_resolved_kind", kind)
        if isinstance(self.metrics, (str, dict)) or (
            self.metrics is not None and not isinstance(self.metrics, (list, tuple))
        ):
            object.__setattr__(self, "metrics", (self.metrics,))
        elif isinstance(self.metrics, list):
            object.__setattr__(self, "metrics", tuple(self.metrics))
        if self.center_loss_weight < 0:
            raise ValueError(f"task {self.name!r}: center_loss_weight must be >= 0")
        if self.center_loss_weight > 0 and kind != "classification":
            raise ValueError(f"task {self.name!r}: a center loss needs a classification task, got {kind!r}")
        if self.center_loss_weight > 0 and not self.center_feature:
            raise ValueError(f"task {self.name!r}: a center loss needs a `center_loss_input` or `embedding` output key")

    @property
    def task_kind(self) -> str:
        """``kind``, or the kind inferred from ``loss``."""
        return self._resolved_kind

    @property
    def center_feature(self) -> str | None:
        """The network output the center loss reads."""
        return self.center_loss_input or self.embedding

    def make_loss(self) -> keras.losses.Loss | None:
        """A new per-sample (unreduced) Keras loss, or None for the default of ``task_kind``."""
        if self.loss is None:
            return None
        loss = self.loss
        if isinstance(loss, dict):
            loss = keras.saving.deserialize_keras_object(loss)
        elif isinstance(loss, keras.losses.Loss):
            loss = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(loss))
        else:
            loss = keras.losses.get(loss)
        if not isinstance(loss, keras.losses.Loss):
            if not callable(loss):
                raise ValueError(
                    f"task {self.name!r}: loss must be a Keras loss, its name or a function, got {self.loss!r}"
                )
            loss = _PerSampleFunction(loss)
        return loss

    def make_metrics(self) -> list:
        """New metric objects named ``<task>_<metric name>``."""
        specs = self.metrics
        if specs is None:
            specs = () if self.task_kind == "regression" else ("accuracy",)
        made = []
        for spec in specs:
            if isinstance(spec, str):
                if spec in ("accuracy", "acc"):
                    if self.task_kind == "regression":
                        raise ValueError(f"task {self.name!r}: 'accuracy' is not a regression metric")
                    cls = (
                        keras.metrics.SparseCategoricalAccuracy
                        if self.task_kind == "classification"
                        else keras.metrics.BinaryAccuracy
                    )
                    made.append(cls(name=f"{self.name}_{spec}"))
                    continue
                metric = keras.metrics.get(spec)
                if isinstance(metric, keras.metrics.Metric):
                    config = keras.saving.serialize_keras_object(metric)
                    config["config"]["name"] = f"{self.name}_{spec}"
                    made.append(keras.saving.deserialize_keras_object(config))
                else:
                    made.append(keras.metrics.MeanMetricWrapper(metric, name=f"{self.name}_{spec}"))
                continue
            if isinstance(spec, keras.metrics.Metric):
                spec = keras.saving.serialize_keras_object(spec)
            if not isinstance(spec, dict):
                raise ValueError(
                    f"task {self.name!r}: a metric must be a Keras metric, its name or its config, got {spec!r}"
                )
            config = {**spec, "config": dict(spec.get("config", {}))}
            config["config"]["name"] = f"{self.name}_{config['config'].get('name', 'metric')}"
            made.append(keras.saving.deserialize_keras_object(config))
        return made

    def get_config(self) -> dict:
        return {
            "name": self.name,
            "logits": self.logits,
            "embedding": self.embedding,
            "center_loss_weight": self.center_loss_weight,
            "center_update_rate": self.center_update_rate,
            "center_loss_squared": self.center_loss_squared,
            "center_loss_input": self.center_loss_input,
            "loss": _serialize(self.loss),
            "metrics": None if self.metrics is None else [_serialize(m) for m in self.metrics],
            "kind": self.kind,
        }

    @classmethod
    def from_config(cls, config: dict) -> TaskSpec:
        return cls(**config)
