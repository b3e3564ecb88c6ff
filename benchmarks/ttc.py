"""What a TTC network's traced train step costs: first call (tracing + graph rewriting) and steady steps.

One DMT (TTC network) of each dataset's ``make reproduce-ttc`` profile (digits: 5 tasks, 16 px; synthattrs:
7 tasks, 20 px; one TensorFlow thread as in the seed processes) is built and trained by
``dynamic_mtl.ttc.TurnTrainer`` in four configurations, interleaved repeat by repeat in this process, each
with a freshly built network (so each traces its own step):

* ``keras Adam, rewrites on``: ``keras.optimizers.Adam`` and TensorFlow's graph rewriting (Grappler) on;
* ``fused Adam, rewrites on``: the trainers' Adam (``ResourceApplyAdam``, one kernel per variable);
* ``keras Adam, rewrites off`` and ``fused Adam, rewrites off``
  (``experiments.ttc.runner.graph_rewrites(False)``, what the TTC runs use).

Reported: the first step's seconds (Python tracing, graph rewriting, one step), the steady step time
(ms) and the operation count of the traced step, and each configuration's first-step and steady-step
ratio to ``keras Adam, rewrites on``.

    python -m benchmarks.ttc
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")  # as experiments.ttc.seeds.SEED_THREADS

import time  # noqa: E402

from benchmarks.common import emit, quick_mode, row, tiny_mode  # noqa: E402

DATASETS = ("digits", "synthattrs")
CASES = (
    ("keras Adam, rewrites on", False, True),
    ("fused Adam, rewrites on", True, True),
    ("keras Adam, rewrites off", False, False),
    ("fused Adam, rewrites off", True, False),
)
BASELINE = CASES[0][0]


def settings() -> dict:
    s = dict(steps=200, repeats=3)
    if quick_mode():
        s.update(steps=100, repeats=2)
    if tiny_mode():
        s.update(steps=4, repeats=1)
    return s


def measure(lab, names, fused: bool, rewrites: bool, steps: int) -> dict:
    """Builds a fresh DMT, then times its first step and ``steps`` more."""
    import keras

    from experiments.ttc.runner import graph_rewrites

    model = lab.build("DMT", names)
    trainer = lab.trainer(model, names)
    if not fused:
        rates = trainer.settings.lr, trainer.settings.alpha_lr
        trainer.opt_w, trainer.opt_a = (keras.optimizers.Adam(rate) for rate in rates)
        trainer.opt_w.build(trainer.weight_vars)
        trainer.opt_a.build(trainer.mixing_vars)
    with graph_rewrites(rewrites):
        start = time.perf_counter()
        trainer.train(1, progress=False)
        first = time.perf_counter() - start
        start = time.perf_counter()
        trainer.train(steps, progress=False)
        steady = (time.perf_counter() - start) / steps
    operations = len(trainer._step.get_concrete_function().graph.get_operations())
    return dict(first=first, steady_ms=1000.0 * steady, operations=operations)


def main() -> None:
    rows = []
    for dataset in DATASETS[:1] if tiny_mode() else DATASETS:
        rows += dataset_rows(dataset)
    emit(rows)


def dataset_rows(dataset: str) -> list[dict]:
    from experiments.ttc.runner import _Lab, load_task_data
    from experiments.ttc.seeds import _config

    s = settings()
    config = _config(dataset, "/tmp/benchmarks-ttc", 0, False)
    data = load_task_data(config, progress=False)
    lab = _Lab(config, data, progress=False)
    names = list(config.tasks)[: 2 if tiny_mode() else None]
    section = (
        f"TTC train step ({dataset} seeds profile: {len(names)} tasks, width x{config.width}, {config.size} px, "
        f"batch {config.batch_size}, 1 thread)"
    )
    cases = (CASES[0], CASES[-1]) if tiny_mode() else CASES  # tiny: the baseline and what the runs use
    results: dict[str, list[dict]] = {name: [] for name, _, _ in cases}
    for _ in range(s["repeats"]):
        for name, fused, rewrites in cases:
            results[name].append(measure(lab, names, fused, rewrites, s["steps"]))
    rows = []
    base = results[BASELINE]
    for name, _, _ in cases:
        mine = results[name]
        rows.append(row(section, name, "first step (trace + rewrite + 1 step)", "s", [r["first"] for r in mine]))
        rows.append(row(section, name, "steady step", "ms", [r["steady_ms"] for r in mine]))
        rows.append(row(section, name, "operations in the traced step", "count", value=mine[0]["operations"]))
        if name != BASELINE:
            for key, metric in (("first", "first step (ratio)"), ("steady_ms", "steady step (ratio)")):
                ratios = [m[key] / b[key] for m, b in zip(mine, base)]
                note = "interleaved repeat by repeat with the baseline"
                rows.append(row(section, f"{name} / {BASELINE}", metric, "ratio", ratios, note=note))
    return rows


if __name__ == "__main__":
    main()
