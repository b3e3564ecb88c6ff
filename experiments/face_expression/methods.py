"""The rows of Tables 2-4: how each method is built, initialised and evaluated."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class MethodSpec:
    """One row of the tables.

    Attributes:
        name: config name (``static@0.3`` is static MTL with w1 = 0.3, Figure 2).
        label: the row label, matching the paper's tables where the paper has the row.
        weighting: weighting strategy name (None: evaluate a checkpoint without training).
        options: keyword options of the strategy.
        unit_options: keyword options of the DynamicWeightUnit.
        init: "scratch", "pretrained" (fine-tune the checkpoint) or "auto" (pretrained when
            a checkpoint is available, as the paper's MTL rows are, else scratch).
        reports: which metrics the row reports: "verification", "expression" or both.
        weight_learning_rate: the weight optimizer's learning rate for this row (None: the config's).
    """

    name: str
    label: str
    weighting: str | None
    options: dict[str, Any] = field(default_factory=dict)
    unit_options: dict[str, Any] = field(default_factory=dict)
    init: str = "auto"
    reports: tuple[str, ...] = ("verification", "expression")
    weight_learning_rate: float | None = None

    @property
    def needs_pretrained(self) -> bool:
        return self.init == "pretrained" or self.weighting is None

    @property
    def in_static_sweep(self) -> bool:
        """A point of Figure 2's static weight sweep (``static@W``, :func:`parse_method`)."""
        return self.name.startswith(STATIC_SWEEP_PREFIX)


#: ``static@W``: static MTL with weights (W, 1 - W), a point of Figure 2
STATIC_SWEEP_PREFIX = "static@"
#: the ``static`` row's weights (face verification, expression) unless the config sets ``static_weights``
STATIC_DEFAULT_WEIGHTS: tuple[float, float] = (0.5, 0.5)


def with_static_weights(spec: MethodSpec, static_weights) -> MethodSpec:
    """``spec`` with the config's ``static_weights`` filled in where a static row names none (the
    ``static`` row); every other spec unchanged. Training and the tables read a row's weights from it."""
    if spec.weighting != "static" or "weights" in spec.options:
        return spec
    return dataclasses.replace(spec, options={**spec.options, "weights": list(static_weights)})


def static_mtl_weights(spec: MethodSpec, static_weights=STATIC_DEFAULT_WEIGHTS) -> tuple[float, ...] | None:
    """The fixed task weights of a static multi-task row, a point of Figure 2: ``static@W`` (W, 1 - W)
    or ``static`` (``static_weights``, the config's); None for every other row, the single-task rows
    (weights (1, 0) and (0, 1), one task each) included."""
    if spec.in_static_sweep:
        return tuple(float(w) for w in spec.options["weights"])
    if spec.name == "static":
        return tuple(float(w) for w in spec.options.get("weights", static_weights))
    return None


_FACE = ("verification",)
_EXPR = ("expression",)

METHODS: dict[str, MethodSpec] = {
    m.name: m
    for m in [
        MethodSpec(
            "single_task_face",
            "Single-task (scratch)",
            "static",
            {"weights": [1.0, 0.0]},
            init="scratch",
            reports=_FACE,
        ),
        MethodSpec(
            "single_task_expression",
            "Single-task (scratch)",
            "static",
            {"weights": [0.0, 1.0]},
            init="scratch",
            reports=_EXPR,
        ),
        MethodSpec("pretrained", "Single-task (pretrained)", None, init="pretrained", reports=_FACE),
        MethodSpec(
            "single_task_face_finetuned",
            "Single-task (fine-tuning)",
            "static",
            {"weights": [1.0, 0.0]},
            init="pretrained",
            reports=_FACE,
        ),
        MethodSpec(
            "single_task_expression_finetuned",
            "Single-task",
            "static",
            {"weights": [0.0, 1.0]},
            init="pretrained",
            reports=_EXPR,
        ),
        MethodSpec("static", "Static MTL", "static"),
        MethodSpec("naive_dynamic", "Naive dynamic MTL", "naive_dynamic"),
        # the paper's method: weight unit with Section 5.5's normalisation (the library default)
        MethodSpec("dynamic", "Proposed dynamic MTL", "dynamic"),
        # the authors' published code: softmax of the raw logits, no Section 5.5 normalisation
        MethodSpec(
            "dynamic_published",
            "Proposed dynamic MTL (published code, no Section 5.5)",
            "dynamic",
            unit_options={"normalize_logits": False},
        ),
        # sensitivity of the proposed method (docs/reproduction.md): the weight unit's learning rate and
        # the stop-gradient of w in the network loss (normalisation on/off is dynamic vs dynamic_published)
        MethodSpec(
            "dynamic_unit_lr0.01", "Proposed dynamic MTL, weight-unit lr 0.01", "dynamic", weight_learning_rate=0.01
        ),
        MethodSpec(
            "dynamic_unit_lr0.001", "Proposed dynamic MTL, weight-unit lr 0.001", "dynamic", weight_learning_rate=0.001
        ),
        MethodSpec(
            "dynamic_no_stop_gradient",
            "Proposed dynamic MTL, gradient through w into the trunk (code)",
            "dynamic",
            {"stop_gradient_weights": False},
        ),
        MethodSpec("uncertainty", "Uncertainty weighting (Kendall 2018)", "uncertainty"),
        MethodSpec("gradnorm", "GradNorm (Chen 2018)", "gradnorm"),
        MethodSpec("dwa", "Dynamic Weight Average (Liu 2019)", "dwa"),
        # the weighting methods of docs/weighting.md, as rows of Tables 2-3 (name = registry name)
        MethodSpec("pcgrad", "PCGrad (Yu 2020)", "pcgrad"),
        MethodSpec("mgda", "MGDA-UB (Sener 2018)", "mgda"),
        MethodSpec("cagrad", "CAGrad (Liu 2021)", "cagrad"),
        MethodSpec("imtl_g", "IMTL-G (Liu 2021)", "imtl_g"),
        MethodSpec("nash_mtl", "Nash-MTL (Navon 2022)", "nash_mtl"),
        MethodSpec("aligned_mtl", "Aligned-MTL (Senushkin 2023)", "aligned_mtl"),
        MethodSpec("gradvac", "GradVac (Wang 2021)", "gradvac"),
        MethodSpec("db_mtl", "DB-MTL (Lin 2023)", "db_mtl"),
        MethodSpec("rlw", "Random loss weighting (Lin 2022)", "rlw"),
        MethodSpec("gls", "Geometric loss strategy (Chennupati 2019)", "gls"),
        MethodSpec("famo", "FAMO (Liu 2023)", "famo"),
        MethodSpec("stch", "Smooth Tchebycheff (Lin 2024)", "stch"),
    ]
}


#: the weighting methods multi-task papers compare against today, later than the paper (docs/weighting.md)
LATER_WEIGHTING_METHODS: tuple[str, ...] = (
    "pcgrad",
    "mgda",
    "cagrad",
    "imtl_g",
    "nash_mtl",
    "aligned_mtl",
    "gradvac",
    "db_mtl",
    "rlw",
    "gls",
    "famo",
    "stch",
)
#: the weighting methods that are neither the paper's nor its baselines, compared with the proposed method
#: in their own section of the study report (docs/reproduction.md, docs/reproduction_weighting.md)
OTHER_WEIGHTING_METHODS: tuple[str, ...] = ("uncertainty", "gradnorm", "dwa", *LATER_WEIGHTING_METHODS)

#: ``methods:`` / ``--methods`` names that stand for several rows: every Figure 2 weight as ``static@W``,
#: and every method of :data:`LATER_WEIGHTING_METHODS`
STATIC_SWEEP_GROUP = "static_sweep"
LATER_WEIGHTING_GROUP = "later_weighting"


def expand_method_names(names, figure2_weights) -> list[str]:
    """``names`` with each group replaced by its rows (:data:`STATIC_SWEEP_GROUP`: ``static@w`` for every
    weight of ``figure2_weights``; :data:`LATER_WEIGHTING_GROUP`: :data:`LATER_WEIGHTING_METHODS`), each
    name once, in order."""
    out: list[str] = []
    for name in names:
        if name == STATIC_SWEEP_GROUP:
            out += [f"{STATIC_SWEEP_PREFIX}{w:.1f}" for w in figure2_weights]
        elif name == LATER_WEIGHTING_GROUP:
            out += LATER_WEIGHTING_METHODS
        else:
            out.append(name)
    return list(dict.fromkeys(out))


def parse_method(name: str) -> MethodSpec:
    """A method by name; ``static@W`` is static MTL with weights (W, 1 - W)."""
    if name.startswith(STATIC_SWEEP_PREFIX):
        try:
            w1 = float(name.split("@", 1)[1])
        except ValueError:
            raise ValueError(f"bad static weight in {name!r}; use e.g. static@0.3") from None
        if not 0.0 <= w1 <= 1.0:
            raise ValueError(f"static weight must lie in [0, 1], got {w1}")
        return MethodSpec(name, f"Static MTL (w1={w1:.1f})", "static", {"weights": [w1, round(1.0 - w1, 10)]})
    try:
        return METHODS[name]
    except KeyError:
        raise ValueError(f"unknown method {name!r}; choose from {sorted(METHODS)} or static@W") from None
