"""Every named random stream of the repository, in one place.

Data generation and the harness draw from numpy ``SeedSequence`` streams whose entropy is
``[seed, code, *keys]``: the stream's code keeps two streams with the same seed and keys apart, so
adding draws to one stream never shifts another (identity ``i`` of synthfaces is the same whatever
else is generated). Two older streams keep the layout they always had, so that their numbers (folds,
pairs, every published run) do not change: ``VALIDATION_SPLIT`` puts its code last and
``EXPRESSION_PAIRS`` has none. TensorFlow / Keras seeds (``keras.utils.set_random_seed``, the
training-batch order) come from :class:`HashedStream`: a 31-bit hash of the seed and the stream's
labels, stable across processes (unlike ``hash()``).

This module imports only numpy and the standard library (data generation must not start TensorFlow),
so the data layer and the harness both use it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Stream:
    """A ``SeedSequence`` stream: entropy ``[seed, *keys]`` with ``code`` inserted at ``code_position``."""

    name: str
    code: int | None
    keys: tuple[str, ...]
    code_position: int = 1
    doc: str = ""

    def entropy(self, seed: int, *keys: int) -> list[int]:
        if len(keys) != len(self.keys):
            raise ValueError(f"{self.name} takes seed and ({', '.join(self.keys)}), got {len(keys)} key(s)")
        parts = [int(seed), *(int(k) for k in keys)]
        if self.code is not None:
            parts.insert(self.code_position, self.code)
        return parts

    def seed_sequence(self, seed: int, *keys: int) -> np.random.SeedSequence:
        return np.random.SeedSequence(self.entropy(seed, *keys))

    def rng(self, seed: int, *keys: int) -> np.random.Generator:
        """A new generator of this stream for ``seed`` and ``keys``."""
        return np.random.default_rng(self.seed_sequence(seed, *keys))


def derived_seed(*parts) -> int:
    """A 31-bit seed from any parts (sha256 of their ``/``-joined text; stable across processes)."""
    digest = hashlib.sha256("/".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


@dataclass(frozen=True)
class HashedStream:
    """A stream of integer seeds: :func:`derived_seed` of ``(seed, *labels, *keys)``."""

    name: str
    labels: tuple[str, ...]
    keys: tuple[str, ...]
    doc: str = ""

    def seed(self, seed: int, *keys) -> int:
        if len(keys) != len(self.keys):
            raise ValueError(f"{self.name} takes seed and ({', '.join(self.keys)}), got {len(keys)} key(s)")
        return derived_seed(seed, *self.labels, *keys)


# ------------------------------------------------------------------ data generation
IDENTITY = Stream("IDENTITY", 1, ("identity",), doc="synthfaces: an identity's face and attributes")
SEQUENCE = Stream(
    "SEQUENCE",
    2,
    ("identity", "sequence"),
    doc="synthfaces and the rehearsal CK+ / Oulu trees: one sequence's pose, expression and frames",
)
EXPRESSIONS = Stream(
    "EXPRESSIONS",
    3,
    ("identity",),
    doc="synthfaces: the expressions of an identity's sequences; the rehearsal WebFace tree: an identity's images",
)
WEB_IMAGE = Stream("WEB_IMAGE", 4, ("identity", "image"), doc="synthfaces identity set: one web-like image")
DROPOUT = Stream("DROPOUT", 5, ("epoch", "generator"), doc="pretraining: a dropout seed generator at an epoch start")
ATTRIBUTE_FACE = Stream("ATTRIBUTE_FACE", 7, ("split", "index"), doc="TTC synthetic attributes: one sample")
ATTRIBUTE_LIPSTICK = Stream(
    "ATTRIBUTE_LIPSTICK", 10, ("split", "index"), doc="TTC synthetic attributes: one sample's wearing_lipstick draw"
)
CONTACT_SHEET = Stream("CONTACT_SHEET", 9, ("row", "column"), doc="synthfaces contact sheet: one cell")
LFW_FOLDS = Stream("LFW_FOLDS", 77, (), doc="LFW-style pairs: the identities' fold order")
LFW_FOLD_PAIRS = Stream("LFW_FOLD_PAIRS", 78, ("fold",), doc="LFW-style pairs: one fold's pairs")

# ------------------------------------------------------------------ the harness (older layouts, kept)
VALIDATION_SPLIT = Stream(
    "VALIDATION_SPLIT", 7, ("fold",), code_position=2, doc="a fold's validation subjects: entropy [seed, fold, 7]"
)
EXPRESSION_PAIRS = Stream("EXPRESSION_PAIRS", None, ("fold",), doc="a fold's neutral/peak pairs: entropy [seed, fold]")
INIT = HashedStream("INIT", ("init",), (), doc="Keras seed before the shared initial weights are built")
FOLD_INIT = HashedStream("FOLD_INIT", ("init", "fold"), ("fold",), doc="Keras seed of a fold's fresh model")
EPOCH_ORDER = HashedStream("EPOCH_ORDER", (), ("fold", "epoch"), doc="training-batch order of one fold's epoch")

#: Every stream, for listings and tests.
STREAMS = (
    IDENTITY,
    SEQUENCE,
    EXPRESSIONS,
    WEB_IMAGE,
    DROPOUT,
    ATTRIBUTE_FACE,
    ATTRIBUTE_LIPSTICK,
    CONTACT_SHEET,
    LFW_FOLDS,
    LFW_FOLD_PAIRS,
    VALIDATION_SPLIT,
    EXPRESSION_PAIRS,
    INIT,
    FOLD_INIT,
    EPOCH_ORDER,
)
