"""The step cost of every weighting method of docs/weighting.md against a plain Keras ``fit`` step.

Same small CNN, batch, image size and device as ``benchmarks.train_step``'s weighting table
(``plain`` is the same plain ``keras.Model`` trained by ``fit``); each method is a
``DynamicMultiTaskModel`` with that weighting. Rounds of one step of every variant in a rotating
order, the ratio to ``plain`` taken within each round (wall time and process CPU time).
Anchors from the papers (their own baselines and hardware): FAMO 1.18x, PCGrad 1.6x, Nash-MTL ~30x.

    python -m benchmarks.weighting_methods [--methods pcgrad,famo] [--backbone small_cnn]
"""

from __future__ import annotations

import argparse

from benchmarks.common import emit
from benchmarks.train_step import Variant, measure, ratio_rows, settings, step_rows
from experiments.face_expression.methods import LATER_WEIGHTING_METHODS

METHODS = LATER_WEIGHTING_METHODS
#: the step-cost ratios the methods' papers report (not comparable hardware or baselines)
PAPER_ANCHORS = {"famo": "paper: 1.18x", "pcgrad": "paper: 1.6x", "nash_mtl": "paper: ~30x"}


def bench_methods(methods=METHODS, backbone: str = "small_cnn") -> list[dict]:
    s = settings(backbone)
    num_ids, num_expr = (100, 7) if backbone != "small_cnn" else (40, 7)
    section = f"weighting methods ({backbone}, {s['image_size']} px, batch {s['batch']}, CPU)"
    common = (backbone, s["image_size"], s["batch"], num_ids, num_expr, False, s["warmup"])
    variants = [Variant("plain", "plain", *common)] + [Variant(m, m, *common) for m in methods]
    times = measure(variants, s["rounds"])
    rows = step_rows(section, variants, times)
    for r in ratio_rows(section, times, "plain"):
        if r["metric"].startswith("step time"):
            r["note"] = PAPER_ANCHORS.get(r["case"], "")
        rows.append(r)
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--methods", default=",".join(METHODS))
    p.add_argument("--backbone", default="small_cnn", choices=("small_cnn", "inception_resnet_v1_reduced"))
    a = p.parse_args(argv)
    methods = [m for m in a.methods.split(",") if m]
    unknown = set(methods) - set(METHODS)
    if unknown:
        p.error(f"unknown method(s) {sorted(unknown)}; choose from {', '.join(METHODS)}")
    emit(bench_methods(methods, a.backbone))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
