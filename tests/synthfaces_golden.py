"""sha256 digests of synthfaces output for fixed seeds, stored to prove a refactor keeps every byte.

:func:`digests` renders a handful of aligned faces (every expression, hair style and drawn attribute),
rehearsal raw frames (custom background and face transform), a small dataset in the CK+ layout (PNG
frames, crops, Emotion files, CSVs), a contact sheet, synthattrs and pretraining-set images, and the
attribute copula's statistics, and hashes each. ``tests/data/synthfaces_digests.json`` holds the digests
the generator produced when they were stored; ``tests/test_synthfaces_golden.py`` compares them.

Regenerate (only when the images are meant to change)::

    PYTHONPATH=. python tests/synthfaces_golden.py
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from pathlib import Path

import numpy as np

PATH = Path(__file__).with_name("data") / "synthfaces_digests.json"


def _array_digest(a: np.ndarray) -> str:
    a = np.ascontiguousarray(a)
    return hashlib.sha256(f"{a.dtype}{a.shape}".encode() + a.tobytes()).hexdigest()


def _float_digest(a: np.ndarray, decimals: int = 10) -> str:
    """A float matrix's digest at ``decimals`` places: LAPACK/BLAS (``eigh``, ``@``, ``corrcoef``) round
    the last bits differently on different CPUs, which moves no attribute draw (those are digested
    bit for bit above)."""
    return _array_digest(np.round(np.asarray(a, np.float64), decimals) + 0.0)


def _tree_digests(root: Path, prefix: str) -> dict[str, str]:
    return {
        f"{prefix}/{p.relative_to(root).as_posix()}": hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != "synthfaces.json"  # the summary holds wall-clock seconds
    }


def digests() -> dict[str, str]:
    """Name -> sha256 of every rendered case (a few seconds on one core)."""
    from data_prep import rehearsal
    from data_prep import synthfaces as sf
    from data_prep.synthfaces_identities import IdentitySetConfig, render_identity_image
    from data_prep.ttc.synthattrs import label_noise_rates, render_attribute_face

    out: dict[str, str] = {}
    # the identity attributes (every attribute but wearing_lipstick, which identities draw only on request)
    everything_on = {a: True for a in sf.IDENTITY_ATTRIBUTES}
    everything_off = {a: False for a in sf.IDENTITY_ATTRIBUTES}
    lipstick_only = {**{a: False for a in sf.ATTRIBUTES}, "wearing_lipstick": True}
    for index in (*range(8), 18):  # seed 0's identities 0-7 and 18: all 4 hair styles, moles, both sexes
        params = sf.identity_params(0, index)
        out[f"identity/{index}"] = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()
        for code in sf.EXPRESSIONS:
            rng = np.random.default_rng([index, code])
            out[f"face/{index}/{code}"] = _array_digest(sf.render_face(params, code, 0.9, rng, size=40))
        for name, attrs in (("on", everything_on), ("off", everything_off), ("lipstick", lipstick_only)):
            rng = np.random.default_rng([index, 99])
            img = sf.render_face(params, 5, 0.5, rng, size=48, attributes=attrs, nuisance=False)
            out[f"face/{index}/attributes_{name}"] = _array_digest(img)
    for code in (1, 4, 7):  # a rehearsal raw frame: own background and face transform, no nuisance
        rng = np.random.default_rng([7, code])
        frame = rehearsal.render_raw_frame(
            sf.identity_params(2001, code), code, 1.0, rng, 90, 120, np.array([60.0, 40.0]), 16.0, 0.1, 0.05
        )
        out[f"raw_frame/{code}"] = _array_digest(frame)
    out["intensity_curve"] = _array_digest(sf._intensity_curve(6, 0.9))
    with tempfile.TemporaryDirectory() as tmp:
        tmp_p = Path(tmp)
        cfg = sf.SynthConfig(
            num_identities=3, sequences_per_identity=2, frames_per_sequence=5, image_size=32, seed=5, unlabelled_every=2
        )
        sf.generate(tmp_p / "set", cfg, workers=1, progress=False)
        out.update(_tree_digests(tmp_p / "set", "generate"))
        cfg_all = sf.SynthConfig(
            num_identities=2, sequences_per_identity=1, frames_per_sequence=4, image_size=24, raw_size=56, seed=1,
            align_all_frames=True,
        )  # fmt: skip
        sf.generate(tmp_p / "all", cfg_all, workers=1, progress=False)
        out.update(_tree_digests(tmp_p / "all", "generate_all_frames"))
        sheet = sf.contact_sheet(tmp_p / "sheet.png", num_identities=2, seed=3, size=32)
        out["contact_sheet"] = hashlib.sha256(sheet.read_bytes()).hexdigest()
    for split in ("train", "test"):
        for index in range(4):
            image, attrs = render_attribute_face(0, split, index, 16)
            out[f"synthattrs/{split}/{index}"] = _array_digest(image) + json.dumps(attrs, sort_keys=True)
    cfg_ids = IdentitySetConfig(num_identities=2, heldout_identities=20, image_size=32)
    for index in range(3):
        out[f"identity_set/{index}"] = _array_digest(render_identity_image(cfg_ids, index, 1))
    draws = np.array([list(sf.sample_attributes(np.random.default_rng(s)).values()) for s in range(500)])
    out["sample_attributes"] = _array_digest(draws)
    # the identity attributes' block (as stored before wearing_lipstick existed), then everything
    k = len(sf.IDENTITY_ATTRIBUTES)
    correlation = sf.attribute_correlation(n=20_000, seed=1)
    out["attribute_correlation"] = _float_digest(correlation[:k, :k])
    out["attribute_correlation_with_lipstick"] = _float_digest(correlation)
    out["latent_correlation"] = _float_digest(np.asarray(sf.ATTRIBUTE_LATENT_CORRELATION)[:k, :k])
    out["latent_correlation_with_lipstick"] = _float_digest(np.asarray(sf.ATTRIBUTE_LATENT_CORRELATION))
    rates = sorted(label_noise_rates(n=20_000).items())
    out["label_noise_rates"] = hashlib.sha256(repr([r for r in rates if r[0] in everything_on]).encode()).hexdigest()
    out["label_noise_rates_with_lipstick"] = hashlib.sha256(repr(rates).encode()).hexdigest()
    return out


def write() -> Path:
    PATH.parent.mkdir(parents=True, exist_ok=True)
    PATH.write_text(json.dumps(digests(), indent=1, sort_keys=True) + "\n")
    return PATH


if __name__ == "__main__":
    print(write())
