"""Multi-seed statistics of the TTC experiments (experiments.ttc.seeds): order-statistic interval of a median,
the task-relabelling permutation test of the alpha-relatedness correlation, the generated docs section."""

from __future__ import annotations

import numpy as np
import pytest

from experiments.ttc.seeds import BEGIN, END, median_interval, relatedness_permutation_test, write_docs


def test_median_interval_is_distribution_free():
    out = median_interval([3.0, 1.0, 2.0, None, 5.0, 4.0, float("nan")])
    assert out["median"] == 3.0 and out["n"] == 5
    assert (out["low"], out["high"]) == (1.0, 5.0)  # n = 5: min..max, coverage 1 - 2 / 32
    assert out["coverage"] == pytest.approx(0.9375)
    wide = median_interval(np.arange(20.0))
    assert wide["low"] > 0 and wide["high"] < 19 and wide["coverage"] >= 0.9
    assert np.isnan(median_interval([None])["median"])


def test_permutation_test_detects_a_matching_structure_and_not_noise():
    rng = np.random.default_rng(0)
    T = 6
    phi = rng.uniform(0, 1, (T, T))
    phi = (phi + phi.T) / 2
    np.fill_diagonal(phi, 1)
    matching = [np.abs(phi) + rng.normal(0, 0.02, (T, T)) for _ in range(3)]
    hit = relatedness_permutation_test(matching, phi)
    assert hit["permutations"] == 720 and hit["observed"] > 0.9 and hit["p_one_sided"] < 0.05
    # unrelated alphas: p-values spread out (few below 0.05), null 95 % point well above 0
    small = phi[:5, :5]
    ps = [relatedness_permutation_test([rng.uniform(0, 1, (5, 5)) for _ in range(3)], small) for _ in range(20)]
    assert sum(p["p_one_sided"] < 0.05 for p in ps) <= 4
    assert np.mean([p["p_one_sided"] for p in ps]) > 0.25 and all(p["null_95"] > 0 for p in ps)


def test_write_docs_replaces_only_the_generated_block(tmp_path):
    doc = tmp_path / "ttc.md"
    doc.write_text(f"# Title\n\nkept\n\n{BEGIN}\nold\n{END}\n\nafter\n")
    write_docs(doc, "new table")
    text = doc.read_text()
    assert "old" not in text and "new table" in text and text.startswith("# Title") and text.endswith("after\n")
    # per-dataset sections: a run of one dataset keeps the other's section and replaces its own
    write_docs(doc, "intro 1", {"synthattrs": "### synthattrs\n\nfaces v1", "digits": "### digits\n\ndigits v1"})
    write_docs(doc, "intro 2", {"synthattrs": "### synthattrs\n\nfaces v2"})
    block = doc.read_text().split(BEGIN)[1].split(END)[0]
    assert "intro 2" in block and "intro 1" not in block and "faces v2" in block and "faces v1" not in block
    assert block.index("faces v2") < block.index("digits v1")  # the order of config.DATASETS
    doc.write_text("no markers")
    with pytest.raises(ValueError, match="markers"):
        write_docs(doc, "x")


def test_speedup_counts_a_side_that_never_reached_the_target_as_infinitely_slow():
    from experiments.ttc.seeds import speedup

    assert speedup(40, 10) == 4.0
    assert speedup(None, 10) == np.inf and speedup(40, None) == 0.0 and np.isnan(speedup(None, None))
    assert median_interval([speedup(None, 10), 2.0, 3.0])["median"] == 3.0


def test_a_seed_process_resolves_the_config_the_serial_path_resolves():
    """--jobs N: each seed's process gets a command line that resolves to the very config --jobs 1 uses (profile,
    --quick, --set, the chosen alpha rate, the grid), so the seeds compute the same either way."""
    from experiments.ttc.seeds import _config, _worker_argv, build_parser

    parent = build_parser().parse_args(
        ["--datasets", "digits", "--seeds", "2", "--out", "o", "--jobs", "2", "--quick", "--capacity-control"]
        + ["--set", "steps_per_task=3", "curve_every=2", "--alpha-lr-grid", "0.01", "0.3"]
    )
    for step, rate in (("select", None), ("run", 0.3)):
        command = _worker_argv(parent, "digits", step, 1, rate)
        assert command[1:3] == ["-m", "experiments.ttc.seeds"]
        worker = build_parser().parse_args(command[3:])
        assert (worker.worker, worker.worker_seed, worker.alpha_lr, worker.datasets) == (step, 1, rate, ["digits"])
        assert worker.alpha_lr_grid == [0.01, 0.3] and worker.out == "o"
        extra = dict(data_root=None, capacity_control=True, alpha_lr=rate)
        serial = _config("digits", "o", 1, parent.quick, parent.settings, **extra)
        parallel = _config("digits", "o", 1, worker.quick, worker.settings, **extra)
        assert serial == parallel and serial.steps_per_task == 3 and serial.curve_every == 2


def test_side_by_side_seeds_that_fail_are_named_with_their_log(tmp_path, capsys, monkeypatch):
    """--jobs 2: every seed's process runs; the ones that fail are named with the end of their log, exit 2."""
    from experiments.ttc.seeds import main

    monkeypatch.delenv("TF_NUM_INTRAOP_THREADS", raising=False)  # main() sets it for this process

    with pytest.raises(SystemExit):
        main(["--datasets", "digits", "--jobs", "0", "--out", str(tmp_path)])
    assert "--jobs must be >= 1" in capsys.readouterr().err
    argv = ["--datasets", "celeba", "--seeds", "2", "--jobs", "2", "--out", str(tmp_path), "--quick"]
    assert main([*argv, "--data-root", str(tmp_path / "no-celeba")]) == 2
    err = capsys.readouterr().err
    assert "2 seed step(s) failed" in err and "celeba seed 0 (select):" in err and "celeba seed 1 (select):" in err
    log = (tmp_path / "celeba" / "seeds" / "seed1.select.log").read_text()
    assert "no-celeba" in log and "error" in log
