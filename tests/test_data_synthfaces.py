"""synthfaces: determinism, CK+ layout, rendering API, attribute correlation structure."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from data_prep import synthfaces as sf
from data_prep.ckplus import read_ckplus

SMALL = dict(sequences_per_identity=2, frames_per_sequence=5, image_size=32)


def _digest(root):
    return {
        p.relative_to(root).as_posix(): hashlib.sha1(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.suffix in (".png", ".txt")
    }


def test_same_seed_same_bytes_and_independent_of_count(tmp_path):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    sf.generate(a, sf.SynthConfig(num_identities=2, seed=3, **SMALL), workers=1, progress=False)
    sf.generate(b, sf.SynthConfig(num_identities=2, seed=3, **SMALL), workers=1, progress=False)
    sf.generate(c, sf.SynthConfig(num_identities=3, seed=3, **SMALL), workers=1, progress=False)
    da, db, dc = _digest(a), _digest(b), _digest(c)
    assert da == db and len(da) > 0
    # Identity i draws from its own SeedSequence: adding identities does not change the others.
    assert all(dc[k] == v for k, v in da.items())
    d_other = _digest_seed(tmp_path / "d", seed=4)
    assert d_other != da


def _digest_seed(path, seed):
    sf.generate(path, sf.SynthConfig(num_identities=2, seed=seed, **SMALL), workers=1, progress=False)
    return _digest(path)


def test_ckplus_layout_and_reader(tmp_path):
    summary = sf.generate(tmp_path, sf.SynthConfig(num_identities=2, seed=0, **SMALL), workers=1, progress=False)
    assert summary["raw_frames"] == 2 * 2 * 5 and summary["aligned_images"] == 2 * 2 * 4
    img = tmp_path / "cohn-kanade-images" / "S001" / "001" / "S001_001_00000001.png"
    assert img.is_file()
    emo = sorted((tmp_path / "Emotion" / "S001" / "001").glob("*_emotion.txt"))
    assert [e.name for e in emo] == ["S001_001_00000005_emotion.txt"]
    text = emo[0].read_text()
    assert text.startswith("   ") and text.strip().endswith("e+00") and 1 <= float(text) <= 7
    frames = read_ckplus(tmp_path)
    assert len(frames) == 2 * 2 * 4
    assert set(frames["role"]) == {"neutral", "peak"}
    assert (frames.loc[frames["role"] == "neutral", "expression"] == 0).all()
    assert (tmp_path / "aligned" / "S001" / "001" / "S001_001_00000005.png").is_file()
    assert (tmp_path / "identities.csv").is_file()


def test_render_face_api():
    p = sf.sample_identity(np.random.default_rng(0))
    assert set(p["attributes"]) == set(sf.IDENTITY_ATTRIBUTES) == set(sf.ATTRIBUTES) - {"wearing_lipstick"}
    img0 = sf.render_face(p, 0, 0.0, np.random.default_rng(1), size=48, nuisance=False)
    img5 = sf.render_face(p, 5, 1.0, np.random.default_rng(1), size=48, nuisance=False)
    assert img0.shape == (48, 48, 3) and img0.dtype == np.uint8
    assert np.abs(img0.astype(int) - img5.astype(int)).mean() > 1.0  # expression visibly changes the face
    again = sf.render_face(p, 5, 1.0, np.random.default_rng(1), size=48, nuisance=False)
    assert np.array_equal(img5, again)
    with_glasses = sf.render_face(
        p, 0, 0.0, np.random.default_rng(1), size=48, nuisance=False, attributes={"eyeglasses": True}
    )
    assert with_glasses.shape == (48, 48, 3)
    with pytest.raises(ValueError, match="expression"):
        sf.render_face(p, 9, 1.0, np.random.default_rng(0))
    with pytest.raises(ValueError, match="unknown attributes"):
        sf.render_face(p, 0, 0.0, np.random.default_rng(0), attributes={"wings": True})


def test_attribute_correlation_structure():
    c = sf.attribute_correlation(n=40_000, seed=0)
    i = {a: k for k, a in enumerate(sf.ATTRIBUTES)}
    assert c[i["male"], i["goatee"]] > 0.15
    assert c[i["goatee"], i["sideburns"]] > 0.15
    assert c[i["male"], i["heavy_makeup"]] < -0.4
    assert c[i["smiling"], i["high_cheekbones"]] > 0.5
    assert abs(c[i["eyeglasses"], i["male"]]) < 0.05
    prev = np.mean([sf.sample_attributes(np.random.default_rng(s))["male"] for s in range(2000)])
    assert abs(prev - sf.ATTRIBUTE_PREVALENCE["male"]) < 0.05


def test_config_validation():
    with pytest.raises(ValueError, match="frames_per_sequence"):
        sf.SynthConfig(frames_per_sequence=3)
    with pytest.raises(ValueError, match="sequences_per_identity"):
        sf.SynthConfig(sequences_per_identity=8)


def test_prepare_synthfaces_cli(tmp_path, capsys):
    import json

    import pandas as pd

    from data_prep.prepare import MANIFEST_COLUMNS, read_manifest
    from experiments.cli import main

    out = tmp_path / "sf"
    assert (
        main(
            [
                "prepare",
                "synthfaces",
                "--out",
                str(out),
                "--num-identities",
                "6",
                "--sequences",
                "3",
                "--frames",
                "5",
                "--image-size",
                "32",
                "--num-folds",
                "3",
                "--workers",
                "1",
                "--quiet",
            ]
        )
        == 0
    )
    capsys.readouterr()
    m = read_manifest(out)
    assert list(m.columns) == list(MANIFEST_COLUMNS)
    assert len(m) == 6 * 3 * 4 and m["aligned"].all() and set(m["aligner"]) == {"synthetic"}
    assert all((out / p).is_file() for p in m["path"])
    summary = json.loads((out / "summary.json").read_text())
    assert summary["images"] == len(m) and summary["subjects"] == 6 and summary["rejects"] == 0
    assert summary["expression_classes"][0] == "neutral" and len(summary["expression_classes"]) == 8
    pairs = pd.read_csv(out / "pairs.csv")
    assert summary["pairs"]["total"] == len(pairs) > 0
    assert (out / "folds.csv").is_file() and (out / "rejects.csv").is_file()


def test_attribute_matrix_is_the_copula_of_sample_attributes():
    """The vectorised draw classifies the same normal draws as sample_attributes (same stream, same thresholds)."""
    for s in range(200):
        row = sf.sample_attribute_matrix(1, np.random.default_rng(s), np.random.default_rng([s, 1]))[0]
        drawn = sf.sample_attributes(np.random.default_rng(s), np.random.default_rng([s, 1]))
        assert list(drawn) == list(sf.ATTRIBUTES) and row.tolist() == list(drawn.values())
        assert row[:-1].tolist() == list(sf.sample_attributes(np.random.default_rng(s)).values())
    assert sf.sample_attribute_matrix(5, np.random.default_rng(0)).shape == (5, len(sf.ATTRIBUTES))
    with pytest.raises(ValueError, match="n must be >= 1"):
        sf.sample_attribute_matrix(0, np.random.default_rng(0))


def test_thresholds_are_the_normal_quantiles_of_the_prevalences():
    from statistics import NormalDist

    for a, t in zip(sf.ATTRIBUTES, sf.ATTRIBUTE_THRESHOLDS):
        assert NormalDist().cdf(t) == pytest.approx(1.0 - sf.ATTRIBUTE_PREVALENCE[a], abs=1e-12)


def test_face_geometry_follows_the_action_units():
    """A jaw drop (surprise) lowers chin and mouth; a squint narrows the eyes; the eyes sit eye_sep apart."""
    identity = sf.identity_params(0, 0)
    neutral = sf.FaceGeometry.of(identity, sf.action_units(0, 0.0, 1.0, None))
    surprise = sf.FaceGeometry.of(identity, sf.action_units(7, 1.0, 1.0, None))
    happy = sf.FaceGeometry.of(identity, sf.action_units(5, 1.0, 1.0, None))
    assert neutral.chin_y == identity["chin_y"] and surprise.chin_y > neutral.chin_y
    assert surprise.mouth_y > neutral.mouth_y and surprise.eye_opening > 1.0 > happy.eye_opening
    eyes = neutral.eye_centres
    assert eyes[1, 0] - eyes[0, 0] == pytest.approx(identity["eye_sep"]) and (eyes[:, 1] == 0).all()
    outline = neutral.outline()
    assert outline[:, 1].max() == pytest.approx(neutral.chin_y)  # the chin is the lowest point
    assert outline[:, 0].max() == pytest.approx(-outline[:, 0].min())  # symmetric
    with pytest.raises(ValueError, match="intensity"):
        sf.action_units(5, 1.5, 1.0, None)


def test_the_single_module_names_still_import():
    """Every name other modules used from the former single-module generator imports from the package."""
    import data_prep.synthfaces as package

    names = (
        "EXPRESSIONS EXPRESSION_CODES ATTRIBUTES STATE_ATTRIBUTES ATTRIBUTE_GROUPS ATTRIBUTE_PREVALENCE "
        "ATTRIBUTE_LATENT_CORRELATION sample_attributes attribute_correlation sample_identity render_face "
        "SynthConfig subject_name identity_params subject_expressions generate contact_sheet "
        "_ATTR_CHOL _ATTR_THRESHOLDS _background _face_transform _render_frame _intensity_curve"
    ).split()
    missing = [n for n in names if not hasattr(package, n)]
    assert not missing
    assert set(package.__all__) <= set(dir(package))


def test_lipstick_follows_heavy_makeup_from_its_own_stream_and_leaves_every_other_draw_alone():
    """wearing_lipstick: latent correlation 0.9 with heavy_makeup and 0.9 x heavy makeup's with the rest (so
    strongly positive with makeup, negative with male and facial hair); drawn from a second generator, so an
    identity's other parameters are the same with or without it; drawn as darker, fuller lips only where the
    attributes carry it (faces drawn without it keep heavy makeup's red lips)."""
    i = {a: k for k, a in enumerate(sf.ATTRIBUTES)}
    latent = np.asarray(sf.ATTRIBUTE_LATENT_CORRELATION)
    lip, makeup = i["wearing_lipstick"], i["heavy_makeup"]
    assert latent[lip, makeup] == pytest.approx(0.9)
    np.testing.assert_allclose(np.delete(latent[lip], lip), 0.9 * np.delete(latent[makeup], lip))
    assert np.linalg.eigvalsh(latent).min() > 0
    c = sf.attribute_correlation(n=40_000, seed=0)
    assert c[lip, makeup] > 0.6 and c[lip, i["male"]] < -0.4 and c[lip, i["goatee"]] < -0.1
    assert abs(c[lip, i["eyeglasses"]]) < 0.05
    prevalence = sf.sample_attribute_matrix(40_000, np.random.default_rng(1))[:, lip].mean()
    assert abs(prevalence - sf.ATTRIBUTE_PREVALENCE["wearing_lipstick"]) < 0.02
    plain = sf.sample_identity(np.random.default_rng(3))
    with_lipstick = sf.sample_identity(np.random.default_rng(3), np.random.default_rng(4))
    assert {k: v for k, v in with_lipstick.items() if k != "attributes"} == {
        k: v for k, v in plain.items() if k != "attributes"
    }
    assert list(with_lipstick["attributes"]) == list(sf.ATTRIBUTES)
    assert {k: v for k, v in with_lipstick["attributes"].items() if k != "wearing_lipstick"} == plain["attributes"]

    def face(attrs):
        return sf.render_face(plain, 0, 0.0, np.random.default_rng(1), size=48, attributes=attrs, nuisance=False)

    bare = {a: False for a in sf.ATTRIBUTES}
    assert not np.array_equal(face({**bare, "wearing_lipstick": True}), face(bare))
    # heavy makeup leaves the lips alone where the attributes carry wearing_lipstick, and paints them (as it
    # always has) on faces drawn without it
    identity_attrs = {a: False for a in sf.IDENTITY_ATTRIBUTES}
    assert not np.array_equal(face({**bare, "heavy_makeup": True}), face({**identity_attrs, "heavy_makeup": True}))
