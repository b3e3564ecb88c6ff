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
