"""Binary face attributes with a known correlation structure (a Gaussian copula).

Every identity draws its attributes here (:func:`sample_attributes`), so they shape the CK+-layout
faces (beards, makeup, cheekbones, pale skin) as well as the attribute-task data of
:mod:`data_prep.ttc.synthattrs`, whose labels are these attributes.

``wearing_lipstick`` is the one attribute an identity does not always carry: it is drawn only when
:func:`sample_attributes` gets a second generator (``lipstick_rng``, the attribute-task data's own stream
``data_prep.seeds.ATTRIBUTE_LIPSTICK``), after and apart from the draw of the other attributes, so that
draw, and with it every CK+-layout face, is the same as without it. Its latent value follows heavy makeup's:
``z_lipstick = r * z_heavy_makeup + sqrt(1 - r^2) * e`` with ``r`` =
:data:`LIPSTICK_MAKEUP_LATENT_CORRELATION` and ``e`` a standard normal from ``lipstick_rng``, so its latent
correlation with every other attribute is ``r`` times heavy makeup's (strongly positive with heavy makeup,
negative with ``male`` and facial hair), as CelebA's Wearing_Lipstick goes with Heavy_Makeup.
"""

from __future__ import annotations

from statistics import NormalDist

import numpy as np

#: The attributes every identity draws (:func:`sample_attributes`), CelebA-style names. Static ones are
#: part of an identity's look; the "state" ones (smiling, mouth_slightly_open) are only drawn when passed
#: to render_face.
IDENTITY_ATTRIBUTES: tuple[str, ...] = (
    "male",
    "no_beard",
    "goatee",
    "sideburns",
    "mustache",
    "smiling",
    "high_cheekbones",
    "mouth_slightly_open",
    "eyeglasses",
    "bangs",
    "heavy_makeup",
    "pale_skin",
)
#: Every binary attribute: the identity attributes, then ``wearing_lipstick`` (drawn only with a
#: ``lipstick_rng``, see the module docstring).
ATTRIBUTES: tuple[str, ...] = (*IDENTITY_ATTRIBUTES, "wearing_lipstick")
STATE_ATTRIBUTES: tuple[str, ...] = ("smiling", "mouth_slightly_open")
#: Groups of related attributes (the relatedness a TTC model should discover):
#: facial hair is driven by ``male``; smiling drives high_cheekbones and an open mouth;
#: makeup (and lipstick, which follows it) is anti-related to ``male``; eyeglasses and pale_skin are
#: independent of all.
ATTRIBUTE_GROUPS: dict[str, tuple[str, ...]] = {
    "facial_hair": ("male", "no_beard", "goatee", "sideburns", "mustache"),
    "smile": ("smiling", "high_cheekbones", "mouth_slightly_open"),
    "grooming": ("heavy_makeup", "bangs", "wearing_lipstick"),
    "independent": ("eyeglasses", "pale_skin"),
}
#: Marginal prevalence P(attribute = 1) (roughly CelebA's).
ATTRIBUTE_PREVALENCE: dict[str, float] = {
    "male": 0.42,
    "no_beard": 0.83,
    "goatee": 0.06,
    "sideburns": 0.06,
    "mustache": 0.04,
    "smiling": 0.48,
    "high_cheekbones": 0.45,
    "mouth_slightly_open": 0.48,
    "eyeglasses": 0.07,
    "bangs": 0.15,
    "heavy_makeup": 0.39,
    "pale_skin": 0.04,
    "wearing_lipstick": 0.47,
}
#: Latent correlation of ``wearing_lipstick`` with ``heavy_makeup`` (its correlation with any other
#: attribute is this times heavy makeup's).
LIPSTICK_MAKEUP_LATENT_CORRELATION = 0.9
#: Latent correlations of the related identity-attribute pairs (every other pair: 0), before the
#: projection below.
_LATENT_PAIRS: dict[tuple[str, str], float] = {
    ("male", "no_beard"): -0.85,
    ("male", "goatee"): 0.8,
    ("male", "sideburns"): 0.8,
    ("male", "mustache"): 0.8,
    ("no_beard", "goatee"): -0.85,
    ("no_beard", "sideburns"): -0.8,
    ("no_beard", "mustache"): -0.8,
    ("goatee", "sideburns"): 0.7,
    ("goatee", "mustache"): 0.75,
    ("sideburns", "mustache"): 0.65,
    ("smiling", "high_cheekbones"): 0.85,
    ("smiling", "mouth_slightly_open"): 0.6,
    ("high_cheekbones", "mouth_slightly_open"): 0.5,
    ("male", "heavy_makeup"): -0.85,
    ("male", "bangs"): -0.35,
    ("heavy_makeup", "bangs"): 0.3,
    ("no_beard", "heavy_makeup"): 0.7,
    ("goatee", "heavy_makeup"): -0.65,
    ("sideburns", "heavy_makeup"): -0.65,
    ("mustache", "heavy_makeup"): -0.65,
    ("male", "high_cheekbones"): -0.25,
    ("heavy_makeup", "high_cheekbones"): 0.25,
}


def _identity_latent_correlation() -> np.ndarray:
    """Latent Gaussian correlation matrix of :data:`IDENTITY_ATTRIBUTES`: the pairs above, projected to the
    nearest positive-definite matrix with unit diagonal (a tiny adjustment)."""
    index = {a: i for i, a in enumerate(IDENTITY_ATTRIBUTES)}
    corr = np.eye(len(IDENTITY_ATTRIBUTES))
    for (a, b), r in _LATENT_PAIRS.items():
        corr[index[a], index[b]] = corr[index[b], index[a]] = r
    eigenvalues, eigenvectors = np.linalg.eigh(corr)
    corr = (eigenvectors * np.clip(eigenvalues, 1e-3, None)) @ eigenvectors.T
    scale = np.sqrt(np.diag(corr))
    return corr / np.outer(scale, scale)


def _latent_correlation() -> np.ndarray:
    """Latent correlation matrix of :data:`ATTRIBUTES`: the identity attributes' block, then lipstick's row
    (heavy makeup's row times :data:`LIPSTICK_MAKEUP_LATENT_CORRELATION`, 1 on the diagonal)."""
    identity = _identity_latent_correlation()
    k = len(IDENTITY_ATTRIBUTES)
    row = LIPSTICK_MAKEUP_LATENT_CORRELATION * identity[IDENTITY_ATTRIBUTES.index("heavy_makeup")]
    corr = np.eye(k + 1)
    corr[:k, :k] = identity
    corr[k, :k] = corr[:k, k] = row
    return corr


#: Ground truth: the latent correlation of the Gaussian copula behind :func:`sample_attributes`
#: (rows and columns in :data:`ATTRIBUTES` order).
ATTRIBUTE_LATENT_CORRELATION: np.ndarray = _latent_correlation()
ATTRIBUTE_LATENT_CORRELATION.setflags(write=False)
#: ``attr_k = 1`` when its latent value exceeds ``Phi^-1(1 - p_k)`` (in :data:`ATTRIBUTES` order).
ATTRIBUTE_THRESHOLDS: np.ndarray = np.array([NormalDist().inv_cdf(1.0 - ATTRIBUTE_PREVALENCE[a]) for a in ATTRIBUTES])
ATTRIBUTE_THRESHOLDS.setflags(write=False)
_K = len(IDENTITY_ATTRIBUTES)
_CHOLESKY = np.linalg.cholesky(_identity_latent_correlation())  # the identity attributes' draw
_MAKEUP = IDENTITY_ATTRIBUTES.index("heavy_makeup")


def _lipstick_latent(makeup_latent, noise):
    r = LIPSTICK_MAKEUP_LATENT_CORRELATION
    return r * makeup_latent + np.sqrt(1.0 - r * r) * noise


def sample_attributes(rng: np.random.Generator, lipstick_rng: np.random.Generator | None = None) -> dict[str, bool]:
    """Draw one binary attribute vector: the :data:`IDENTITY_ATTRIBUTES`, and ``wearing_lipstick`` too when
    ``lipstick_rng`` is given (one standard normal drawn from it; ``rng`` draws the same numbers either way).

    Gaussian copula: ``z ~ N(0, ATTRIBUTE_LATENT_CORRELATION)``, ``attr_k = z_k > Phi^-1(1 - p_k)``
    with ``p_k = ATTRIBUTE_PREVALENCE[k]``. The ground-truth binary correlations follow from the
    latent ones (:func:`attribute_correlation` estimates them); :data:`ATTRIBUTE_GROUPS` lists the
    related groups.
    """
    z = _CHOLESKY @ rng.standard_normal(_K)
    attrs = {a: bool(v) for a, v in zip(IDENTITY_ATTRIBUTES, z > ATTRIBUTE_THRESHOLDS[:_K])}
    if lipstick_rng is not None:
        attrs["wearing_lipstick"] = bool(
            _lipstick_latent(z[_MAKEUP], lipstick_rng.standard_normal()) > ATTRIBUTE_THRESHOLDS[_K]
        )
    return attrs


def sample_attribute_matrix(
    n: int, rng: np.random.Generator, lipstick_rng: np.random.Generator | None = None
) -> np.ndarray:
    """``n`` attribute vectors at once: a bool ``(n, len(ATTRIBUTES))`` array, columns in :data:`ATTRIBUTES`
    order (the same copula as :func:`sample_attributes`, the identity attributes drawn row-wise from one
    ``(n, k)`` normal block of ``rng``, then lipstick's ``n`` normals from ``lipstick_rng``, default ``rng``)."""
    if int(n) < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    z = rng.standard_normal((int(n), _K)) @ _CHOLESKY.T
    lipstick = _lipstick_latent(z[:, _MAKEUP], (lipstick_rng or rng).standard_normal(int(n)))
    return np.column_stack([z > ATTRIBUTE_THRESHOLDS[:_K], lipstick > ATTRIBUTE_THRESHOLDS[_K]])


def attribute_correlation(n: int = 200_000, seed: int = 0) -> np.ndarray:
    """Monte-Carlo estimate of the binary (phi) correlation matrix of :func:`sample_attributes`."""
    x = sample_attribute_matrix(n, np.random.default_rng(seed)).astype(np.float64)
    return np.corrcoef(x, rowvar=False)
