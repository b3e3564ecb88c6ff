"""A small stored per-fold result set and the ``results.md`` it renders to.

``tests/data/golden_results/<case>/`` holds a run directory's ``config.yaml`` and ``per_fold/``
(per-fold JSONs and distance files, made once by :func:`write_result_set` with a fixed seed) and
``results.md``, the report the code rendered from them when the set was stored. The test renders
the report again from a copy and compares it byte for byte, so a refactor of the table code that
changes one character of the output fails.

Regenerate (only when the report is meant to change)::

    PYTHONPATH=. python tests/golden_results.py
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import yaml

from experiments.face_expression.config import ExperimentConfig
from experiments.face_expression.methods import parse_method

ROOT = Path(__file__).with_name("data") / "golden_results"
MACHINE = "golden test machine"
CLASS_NAMES = ["neutral", "anger", "happy", "surprise"]
#: case -> (config overrides, methods, methods without validation pairs on fold 1, pending methods)
CASES = {
    "ckplus_column": (
        {"name": "golden", "dataset": "synthfaces"},
        [
            "single_task_face",
            "single_task_expression",
            "pretrained",
            "single_task_face_finetuned",
            "single_task_expression_finetuned",
            "static",
            "naive_dynamic",
            "dynamic",
            "static@0.2",
            "static@0.8",
        ],
        ["naive_dynamic"],
        None,
    ),
    "oulu_column": (
        {"name": "golden", "dataset": "synthfaces", "expression_protocol": "oulu6"},
        ["single_task_face", "single_task_expression", "static", "dynamic", "uncertainty"],
        [],
        None,
    ),
    "partial": (
        {"name": "golden", "dataset": "synthfaces"},
        ["single_task_face", "static", "dynamic"],
        [],
        ["naive_dynamic"],
    ),
}
FOLDS = [0, 1, 2]
KINDS = np.array(["same_required", "diff_required", "same_other", "diff_other"])


def _pairs(rng: np.random.Generator, n: int):
    same = rng.random(n) < 0.5
    d = np.where(same, rng.normal(0.8, 0.3, n), rng.normal(1.5, 0.3, n)).clip(0.0, 3.99)
    kind = KINDS[np.where(same, 0, 1) + 2 * (rng.random(n) < 0.5)]
    return d.astype(np.float32), same, kind


def write_result_set(run_dir: Path, case: str) -> None:
    """The config and ``per_fold/`` files of ``case`` (seeded: the same bytes each time)."""
    overrides, methods, no_validation, _ = CASES[case]
    run_dir.mkdir(parents=True, exist_ok=True)
    # only the fields results.md shows, so that a new config field does not break the stored set
    config = ExperimentConfig.load("tiny").override(**overrides, methods=methods)
    shown = ("name", "dataset", "data_dir", "expression_protocol", "methods", "epochs", "backbone", "image_size")
    (run_dir / "config.yaml").write_text(yaml.safe_dump({k: getattr(config, k) for k in (*shown, "batch_size")}))
    out = run_dir / "per_fold"
    out.mkdir(exist_ok=True)
    rng = np.random.default_rng(20260)
    for method in methods:
        spec = parse_method(method)
        for fold in FOLDS:
            result = {"method": method, "fold": fold, "epochs": 2, "best_epoch": 1, "val_score": 0.5}
            if "expression" in spec.reports:
                result["expression_accuracy"] = round(float(rng.uniform(0.4, 0.9)), 6)
            else:
                result["expression_accuracy"] = None
            (out / f"{method}_fold{fold}.json").write_text(json.dumps(result, indent=1))
            arrays = {}
            if "verification" in spec.reports:
                td, ts, tk = _pairs(rng, 60)
                vd, vs, _ = _pairs(rng, 40)
                if method in no_validation and fold == 1:
                    vd, vs = np.zeros(0, np.float32), np.zeros(0, bool)
                arrays.update(
                    test_distances=td,
                    test_issame=ts,
                    test_kind=tk,
                    validation_distances=vd,
                    validation_issame=vs,
                )
            else:
                arrays.update(
                    test_distances=np.zeros(0, np.float32),
                    test_issame=np.zeros(0, bool),
                    validation_distances=np.zeros(0, np.float32),
                    validation_issame=np.zeros(0, bool),
                )
            if "expression" in spec.reports:
                true = rng.integers(-1, len(CLASS_NAMES), 30)
                arrays.update(test_expression_true=true, test_expression_pred=rng.integers(0, len(CLASS_NAMES), 30))
            np.savez_compressed(out / f"{method}_fold{fold}_distances.npz", **arrays)


def render(run_dir: Path, case: str) -> str:
    """``results.md`` as ``dynamic-mtl run`` writes it for the stored results of ``run_dir``."""
    from experiments.face_expression.run import write_tables
    from experiments.rundir import read_result

    config = ExperimentConfig.load(run_dir / "config.yaml")
    _, methods, _, pending = CASES[case]
    done = [m for m in methods if m not in (pending or [])]
    results = [read_result(run_dir / "per_fold" / f"{m}_fold{k}.json") for m in done for k in FOLDS]
    write_tables(
        run_dir,
        config,
        results,
        FOLDS,
        [parse_method(m) for m in done],
        MACHINE,
        pending=pending,
        echo=False,
        class_names=CLASS_NAMES,
    )
    # the resume command names the run directory, which is a temporary copy here
    return (run_dir / "results.md").read_text().replace(str(run_dir), "RUN_DIR")


def main() -> None:
    import tempfile

    for case in CASES:
        stored = ROOT / case
        shutil.rmtree(stored, ignore_errors=True)
        write_result_set(stored, case)
        with tempfile.TemporaryDirectory() as tmp:
            run_dir = Path(tmp) / "run-golden"
            shutil.copytree(stored, run_dir)
            (stored / "results.md").write_text(render(run_dir, case))
        print(f"wrote {stored}")


if __name__ == "__main__":
    main()
