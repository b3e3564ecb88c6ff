"""The study: claim evaluation on hand-made units, and `dynamic-mtl study` end to end (tiny config)."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

from experiments.face_expression.claims import (
    CLAIMS,
    NOT_MEASURED,
    PairedClaim,
    SweepClaim,
    ThresholdClaim,
    evaluate_other_weightings,
    evaluate_sensitivity,
    step_statistics,
)


def _units(rng, methods_means: dict[str, float], seeds=(0, 1, 2), folds=range(10), noise=0.01):
    rows = []
    for seed in seeds:
        for fold in folds:
            shared = rng.normal(0, 0.05)  # a unit effect common to every method (paired design)
            for method, mean in methods_means.items():
                rows.append(
                    {
                        "method": method,
                        "seed": seed,
                        "fold": fold,
                        "verification_accuracy": mean + shared + rng.normal(0, noise),
                        "expression_accuracy": 0.5 + shared + rng.normal(0, noise),
                    }
                )
    return pd.DataFrame(rows)


def test_paired_claim_verdicts_follow_the_paired_differences():
    units = _units(np.random.default_rng(0), {"dynamic": 0.80, "static": 0.78, "naive_dynamic": 0.80})
    beats = PairedClaim("a", "q", "s", method="dynamic", baseline="static").evaluate(units)
    assert beats["verdict"] == "reproduced" and beats["units"] == 30
    assert ("p=" in beats["statistic"] or "p<" in beats["statistic"]) and beats["statistic"].startswith("80.")
    worse = PairedClaim("b", "q", "s", method="static", baseline="dynamic").evaluate(units)
    assert worse["verdict"] == "not reproduced"
    tie = PairedClaim("c", "q", "s", method="dynamic", baseline="naive_dynamic").evaluate(units)
    assert tie["verdict"] in ("inconclusive", "reproduced", "not reproduced")
    missing = PairedClaim("d", "q", "s", method="dynamic", baseline="gradnorm").evaluate(units)
    assert missing["verdict"] == NOT_MEASURED


def test_the_unit_effect_cancels_in_the_paired_comparison():
    """A 0.5-point difference under a 5-point unit-to-unit spread: unpaired means overlap,
    the paired difference is clear."""
    units = _units(np.random.default_rng(1), {"dynamic": 0.805, "static": 0.80}, noise=0.001)
    row = PairedClaim("a", "q", "s", method="dynamic", baseline="static").evaluate(units)
    assert row["verdict"] == "reproduced"


def test_threshold_and_step_statistics():
    steps = pd.DataFrame(
        {
            "w_identity": [0.5, 0.3, 0.1, 0.1],
            "w_expression": [0.5, 0.7, 0.9, 0.9],
            "loss_identity": [2.0, 2.0, 1.0, 0.1],
            "loss_expression": [1.0, 1.0, 1.5, 1.0],
            "weight_grad_norm": [1.0, 1e-7, 1e-3, 1e-9],
        }
    )
    stats = step_statistics(steps)
    assert stats["final_w_identity"] == pytest.approx(0.1)
    assert stats["larger_loss_larger_weight"] == pytest.approx(0.5)  # steps 3 and 4 agree, 1 ties, 2 disagrees
    assert stats["vanishing_gradient_share"] == pytest.approx(0.5)
    assert stats["mean_loss_identity"] == pytest.approx(1.275)
    units = pd.DataFrame(
        {
            "method": "naive_dynamic",
            "seed": 0,
            "fold": range(6),
            "final_w_identity": [0.10, 0.12, 0.08, 0.11, 0.09, 0.10],
        }
    )
    claim = ThresholdClaim("n", "q", "s", metric="final_w_identity", method="naive_dynamic", threshold=0.2)
    assert claim.evaluate(units)["verdict"] == "reproduced"
    units["final_w_identity"] += 0.5
    assert claim.evaluate(units)["verdict"] == "not reproduced"


def test_sweep_claim_compares_the_best_weights_per_unit():
    rows = []
    for fold in range(8):
        for w1 in (0.0, 0.5, 1.0):
            rows.append(
                {
                    "method": f"static@{w1}",
                    "seed": 0,
                    "fold": fold,
                    "verification_accuracy": w1,
                    "expression_accuracy": 1.0 - w1,
                }
            )
    assert SweepClaim("f2", "q", "s").evaluate(pd.DataFrame(rows))["verdict"] == "reproduced"
    assert SweepClaim("f2", "q", "s").evaluate(pd.DataFrame(rows[:3]))["verdict"] in ("inconclusive", "reproduced")
    assert SweepClaim("f2", "q", "s").evaluate(pd.DataFrame(rows).iloc[:0])["verdict"] == NOT_MEASURED


def test_claims_have_unique_keys_and_known_methods():
    from experiments.face_expression.methods import METHODS

    assert len({c.key for c in CLAIMS}) == len(CLAIMS)
    for claim in CLAIMS:
        for name in (getattr(claim, "method", None), getattr(claim, "baseline", None)):
            assert name is None or name in METHODS, name


def test_sensitivity_reports_the_paired_effect_of_each_variant():
    units = _units(np.random.default_rng(2), {"dynamic": 0.80, "dynamic_unit_lr0.01": 0.83, "dynamic_published": 0.80})
    table = evaluate_sensitivity(units).set_index(["variant", "metric"])
    assert table.loc[("dynamic_unit_lr0.01", "verification_accuracy"), "effect"] == "higher"
    assert table.loc[("dynamic_unit_lr0.01", "verification_accuracy"), "units"] == 30
    assert "dynamic_no_stop_gradient" not in table.index.get_level_values(0)  # not run: no row


def test_other_weighting_methods_are_compared_with_the_proposed_method_on_both_tasks():
    from experiments.face_expression.methods import METHODS, OTHER_WEIGHTING_METHODS

    assert set(OTHER_WEIGHTING_METHODS) <= set(METHODS)
    units = _units(np.random.default_rng(3), {"dynamic": 0.80, "pcgrad": 0.76, "famo": 0.80, "static": 0.90})
    table = evaluate_other_weightings(units).set_index(["variant", "metric"])
    assert table.loc[("pcgrad", "verification_accuracy"), "effect"] == "lower"
    assert table.loc[("pcgrad", "verification_accuracy"), "change"] == METHODS["pcgrad"].label
    assert table.loc[("famo", "expression_accuracy"), "units"] == 30
    # static is a baseline of the paper (its claims), not one of the other weighting methods
    assert set(table.index.get_level_values(0)) == {"pcgrad", "famo"}
    assert set(table.index.get_level_values(1)) == {"verification_accuracy", "expression_accuracy"}


def test_the_weighting_study_target_runs_every_later_method_beside_static_and_proposed():
    """``make reproduce-study-weighting`` names its rows in the Makefile; the ``later_weighting`` group
    expands to the registry's list, so a method added there joins the study."""
    import re
    from pathlib import Path

    from experiments.face_expression.config import ExperimentConfig, methods_override
    from experiments.face_expression.methods import LATER_WEIGHTING_METHODS
    from experiments.face_expression.run import expand_methods

    makefile = (Path(__file__).parents[1] / "Makefile").read_text()
    (line,) = re.findall(r"^WEIGHTING_STUDY_METHODS \?= (.*)$", makefile, flags=re.M)
    config = ExperimentConfig.load("study").override(**methods_override(line.split()))
    assert expand_methods(config) == ["static", "dynamic", *LATER_WEIGHTING_METHODS]


def test_convergence_flags_rows_still_learning():
    from experiments.face_expression.study import convergence

    rows = []
    for fold in range(6):
        for epoch in range(8):
            rows.append(
                {
                    "method": "flat",
                    "seed": 0,
                    "fold": fold,
                    "epoch": epoch,
                    "val_verification_accuracy": 0.8 + 0.001 * (fold % 2),
                    "val_expression_accuracy": 0.5,
                }
            )
            rows.append(
                {
                    "method": "rising",
                    "seed": 0,
                    "fold": fold,
                    "epoch": epoch,
                    "val_verification_accuracy": 0.5 + 0.03 * epoch + 0.002 * fold,
                    "val_expression_accuracy": 0.3 + 0.03 * epoch,
                }
            )
    table = convergence(pd.DataFrame(rows), {"flat": ("verification",), "rising": ("verification", "expression")})
    flags = table.set_index(["method", "metric"])["plateaued"]
    assert flags[("flat", "val_verification_accuracy")]
    assert not flags[("rising", "val_verification_accuracy")]
    assert not flags[("rising", "val_expression_accuracy")]
    assert ("flat", "val_expression_accuracy") not in flags.index  # not a metric the row reports
    assert set(table["from_epoch"]) == {5} and set(table["to_epoch"]) == {8}  # epochs 7-8 against 5-6


def test_convergence_averages_epochs_so_one_noisy_last_epoch_does_not_decide():
    from experiments.face_expression.study import convergence, plateau_window

    assert [plateau_window(e) for e in (8, 12, 16, 17, 22, 24, 32)] == [2, 2, 2, 3, 3, 3, 4]
    rng = np.random.default_rng(0)
    rows = []
    for fold in range(20):
        level = 0.8 + 0.01 * rng.standard_normal()
        for epoch in range(12):
            # flat, with one epoch in four 2 points up or down: the gain averages to about 0
            noise = 0.02 * rng.choice([-1.0, 0.0, 0.0, 1.0])
            rows.append(
                {"method": "flat", "seed": 0, "fold": fold, "epoch": epoch, "val_expression_accuracy": level + noise}
            )
    table = convergence(pd.DataFrame(rows), {"flat": ("expression",)})
    (row,) = table.itertuples(index=False)
    assert (row.from_epoch, row.to_epoch) == (9, 12)
    # the gain printed is the mean over units of (mean of epochs 11-12) - (mean of epochs 9-10)
    wide = pd.DataFrame(rows).pivot_table(index=["seed", "fold"], columns="epoch", values="val_expression_accuracy")
    expected = ((wide[[10, 11]].mean(axis=1) - wide[[8, 9]].mean(axis=1)) * 100).mean()
    assert row.gain.startswith(f"{expected:+.2f}")
    assert row.plateaued


def test_study_refuses_repeated_seeds_before_any_work(tmp_path, capsys):
    from experiments.cli import main

    assert main(["study", "--config", "tiny", "--seeds", "0", "0", "--results-dir", str(tmp_path / "r")]) == 2
    assert "--seeds must be distinct" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


@pytest.mark.slow
def test_study_command_end_to_end(tmp_path, synthfaces_tiny):
    """Two seeds of a tiny config: the study files exist, every claim has a verdict, and the
    published Markdown is the study's own file."""
    from experiments.cli import main

    data = synthfaces_tiny
    published = tmp_path / "docs" / "reproduction.md"
    argv = [
        "study",
        "--config",
        "tiny",
        "--seeds",
        "0",
        "1",
        "--study-id",
        "s",
        "--data-dir",
        str(data),
        "--results-dir",
        str(tmp_path / "results"),
        "--methods",
        "static",
        "naive_dynamic",
        "dynamic",
        "pcgrad",
        "dynamic_unit_lr0.01",
        "--publish",
        str(published),
        "--quiet",
    ]
    assert main([*argv, "--jobs", "2"]) == 0  # the seeds side by side, each in its own process
    for seed in (0, 1):
        assert (tmp_path / "results" / "synthfaces" / "s" / f"seed{seed}.config.yaml").is_file()
    study = tmp_path / "results" / "synthfaces" / "s"
    units = pd.read_csv(study / "units.csv")
    assert set(units["seed"]) == {0, 1} and set(units["fold"]) == {0, 1}
    assert units.groupby("method").size().to_dict() == {
        m: 4 for m in ("static", "naive_dynamic", "dynamic", "pcgrad", "dynamic_unit_lr0.01")
    }
    assert units.loc[units["method"] == "dynamic", "larger_loss_larger_weight"].notna().all()
    claims = pd.read_csv(study / "claims.csv")
    assert len(claims) == len(CLAIMS)
    measured = claims[claims["verdict"] != NOT_MEASURED]
    assert {"naive_hard_task_weight", "proposed_beats_static_verification"} <= set(measured["claim"])
    assert (measured["units"] == 4).all()
    assert published.read_text() == (study / "reproduction.md").read_text()
    sensitivity = pd.read_csv(study / "sensitivity.csv")
    assert set(sensitivity["variant"]) == {"dynamic_unit_lr0.01"}
    others = pd.read_csv(study / "other_weightings.csv")
    assert set(others["variant"]) == {"pcgrad"} and (others["units"] == 4).all()
    curves = pd.read_csv(study / "learning_curves.csv")
    assert len(curves) == 5 * 4 * 1  # methods x units x epochs (tiny: 1 epoch)
    assert (study / "learning_curves.png").stat().st_size > 0
    report = published.read_text()
    assert "## Sensitivity" in report and "## Other weighting methods" in report
    # a claim whose methods were not run is named once below the table, not given a row
    assert "Not measured (this study did not run the methods they compare)" in report
    assert "| **not measured** |" not in report
    # resuming a finished study reruns nothing and rewrites the same claims
    assert main(argv + ["--resume"]) == 0
    pd.testing.assert_frame_equal(pd.read_csv(study / "claims.csv"), claims)


def test_parallel_seeds_share_the_cores_and_a_failed_seed_is_named_with_its_log(tmp_path, capsys):
    from experiments.cli import main
    from experiments.face_expression.study import threads_per_job

    assert threads_per_job(2, cores=2) == 1 and threads_per_job(1, cores=2) == 2 and threads_per_job(4, cores=2) == 1
    assert main(["study", "--config", "tiny", "--jobs", "0", "--results-dir", str(tmp_path / "r")]) == 2
    assert "--jobs must be >= 1" in capsys.readouterr().err
    # both seeds' runs fail in their own process (no prepared data, no raw tree to prepare it from)
    argv = [
        "study", "--config", "tiny", "--seeds", "0", "1", "--jobs", "2", "--quiet",
        "--results-dir", str(tmp_path / "r"), "--data-dir", str(tmp_path / "no-data"), "--pretrained", "missing.keras",
    ]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "2 seed run(s) failed" in err and "seed 0:" in err and "seed 1:" in err and "--resume" in err
    assert (tmp_path / "r" / "synthfaces" / "study" / "seed1.log").read_text().strip()


def test_single_seed_methods_run_with_the_first_seed_only():
    from experiments.face_expression.config import ExperimentConfig
    from experiments.face_expression.study import seed_config

    config = ExperimentConfig(methods=["static", "dynamic"], single_seed_methods=["static@0.2", "dynamic"])
    first, second = (seed_config(config, "s", [3, 4], seed) for seed in (3, 4))
    assert (first.seed, first.run_id, first.methods) == (3, "s/seed3", ["static", "dynamic", "static@0.2"])
    assert (second.seed, second.run_id, second.methods) == (4, "s/seed4", ["static", "dynamic"])
    with pytest.raises(Exception, match="unknown method"):
        ExperimentConfig.from_dict({"single_seed_methods": ["no_such_method"]})


def test_sweep_claim_counts_the_static_row_as_w1_one_half_and_skips_units_without_a_sweep():
    rows = []
    for fold in range(6):
        for method, w1 in (("static@0.2", 0.2), ("static", 0.5), ("static@0.8", 0.8)):
            rows.append(
                {
                    "method": method,
                    "seed": 0,
                    "fold": fold,
                    "verification_accuracy": w1,
                    "expression_accuracy": 1.0 - w1,
                }
            )
        # a second seed that ran only the "static" row: no sweep there, so it does not count
        rows.append(
            {"method": "static", "seed": 1, "fold": fold, "verification_accuracy": 0.5, "expression_accuracy": 0.5}
        )
    result = SweepClaim("f2", "q", "s").evaluate(pd.DataFrame(rows))
    assert result["verdict"] == "reproduced" and result["units"] == 6


def test_curves_skip_the_empty_history_of_a_method_without_epochs_and_wall_time_comes_from_the_files(tmp_path):
    from experiments.face_expression.study import gather_curves, seed_run_minutes, seed_work_minutes

    run = tmp_path / "seed0"
    (run / "per_fold").mkdir(parents=True)
    (run / "per_fold" / "pretrained_fold0_history.csv").write_text("\n")  # as the harness writes it
    (run / "per_fold" / "static_fold0_history.csv").write_text("epoch,val_score\n0,0.5\n1,0.6\n")
    curves = gather_curves({0: run})
    assert set(curves["method"]) == {"static"} and len(curves) == 2
    (run / "config.yaml").write_text("x")
    (run / "per_fold.csv").write_text("method,fold,train_seconds\nstatic,0,120\nstatic,1,60\n")
    os.utime(run / "config.yaml", (1000, 1000))
    os.utime(run / "per_fold.csv", (1000 + 90, 1000 + 90))
    assert seed_run_minutes(run) == pytest.approx(1.5)
    assert seed_work_minutes(run) == pytest.approx(3.0)  # a resumed run's earlier folds count too
