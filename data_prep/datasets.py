"""The datasets the package prepares and runs on: one :class:`DatasetSpec` per dataset.

Everything that depends on the dataset's name reads this registry: the config's validation, the
``--dataset`` choices of ``dynamic-mtl run``, the sub-commands of ``dynamic-mtl prepare``,
``ensure_prepared`` (generate or read the raw tree), the re-create command of an incomplete folder,
the data note of ``results.md`` and the paper column (Tables 2-4 of Ming et al. 2019) a run is set
beside. Adding a dataset is its reader module, one entry in :data:`DATASETS` and its test
(docs/contributing.md).

This module imports nothing heavy (no TensorFlow, no reader): the prepare function is named as
``"module:function"`` and imported on use.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .labels import OULU_EXPRESSIONS_6


@dataclass(frozen=True)
class CliOption:
    """One dataset-specific option of ``dynamic-mtl prepare <dataset>``, passed to its prepare function.

    ``flag`` is the long option (``--spectrum``); ``dest`` the prepare function's keyword; ``kwargs``
    go to ``argparse.ArgumentParser.add_argument`` as they are.
    """

    flag: str
    dest: str
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DatasetSpec:
    """One dataset.

    Attributes:
        name: the config / CLI name (``dataset: ckplus``, ``dynamic-mtl prepare ckplus``).
        display_name: how tables and messages name it (``CK+``).
        prepare: ``"module:function"`` that prepares it into a folder (data_prep/prepare.py).
        needs_raw_root: True for a licensed dataset read from a raw tree (``--root`` / ``data_root``),
            False for a generated one.
        paper_column: the column of the paper's Tables 2-4 its runs are set beside
            (``ckplus`` or ``oulu``, experiments/face_expression/paper_numbers.py).
        help: one line for ``dynamic-mtl prepare --help``.
        cli_options: its own options of ``dynamic-mtl prepare <name>`` (raw datasets).
        expression_protocols: expression protocols it defines that a run on any dataset may use
            (``expression_protocol: oulu6``): protocol name -> its classes (code -> name); every
            other expression label becomes unlabelled (-1).
        synthetic: True when it stands in for the paper's data (results.md says so).
    """

    name: str
    display_name: str
    prepare: str
    needs_raw_root: bool
    paper_column: str
    help: str
    cli_options: tuple[CliOption, ...] = ()
    expression_protocols: dict[str, dict[int, str]] = field(default_factory=dict)
    synthetic: bool = False

    @property
    def default_data_dir(self) -> str:
        """Where ``dynamic-mtl run --dataset NAME`` keeps the prepared folder unless told otherwise."""
        return f"data/{self.name}"

    def prepare_function(self) -> Callable[..., dict]:
        """The prepare function (imported now)."""
        module, function = self.prepare.split(":")
        return getattr(importlib.import_module(module), function)

    def data_note(self, source: str | None) -> str:
        """How results.md names the data a run used (``source``: the raw tree or prepared folder)."""
        if self.synthetic:
            return f"embedded {self.name} dataset (synthetic, NOT CK+ or Oulu-CASIA)"
        return f"real {self.name} data from {source}"


#: every dataset, by name (the first is the default of a config)
DATASETS: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in (
        DatasetSpec(
            "synthfaces",
            "synthfaces",
            "data_prep.prepare:prepare_synthfaces",
            needs_raw_root=False,
            paper_column="ckplus",  # CK+'s 8 expression codes and layout
            help="generate the embedded procedural face dataset (no download)",
            synthetic=True,
        ),
        DatasetSpec(
            "ckplus",
            "CK+",
            "data_prep.prepare:prepare_ckplus",
            needs_raw_root=True,
            paper_column="ckplus",
            help="CK+ (cohn-kanade-images/ + Emotion/) through MTCNN",
        ),
        DatasetSpec(
            "oulu",
            "Oulu-CASIA",
            "data_prep.prepare:prepare_oulu",
            needs_raw_root=True,
            paper_column="oulu",
            help="Oulu-CASIA (VL|NI/Strong|Weak|Dark/P001/Anger/...) through MTCNN",
            cli_options=(
                CliOption("--spectrum", "spectrum", {"choices": ("VL", "NI"), "default": "VL"}),
                CliOption(
                    "--illumination", "illumination", {"choices": ("Strong", "Weak", "Dark"), "default": "Strong"}
                ),
                CliOption(
                    "--classes",
                    "classes",
                    {
                        "type": int,
                        "choices": (6, 7),
                        "default": 6,
                        "help": "6 (authors', no neutral class) or 7 (neutral first frames as class 0)",
                    },
                ),
            ),
            expression_protocols={"oulu6": dict(OULU_EXPRESSIONS_6)},
        ),
    )
}


def expression_protocols() -> tuple[str, ...]:
    """``expression_protocol`` values: ``dataset`` (the dataset's own classes) and every dataset's protocols."""
    return ("dataset",) + tuple(p for s in DATASETS.values() for p in s.expression_protocols)


def get(name: str) -> DatasetSpec:
    """The spec of dataset ``name``; a one-line ValueError naming the choices otherwise."""
    try:
        return DATASETS[name]
    except (KeyError, TypeError):
        raise ValueError(f"dataset must be one of {', '.join(DATASETS)}, got {name!r}") from None


def protocol_owner(protocol: str) -> DatasetSpec | None:
    """The dataset that defines expression protocol ``protocol`` (None for ``dataset``)."""
    choices = expression_protocols()
    if protocol not in choices:
        raise ValueError(f"expression_protocol must be one of {', '.join(choices)}, got {protocol!r}")
    return next((s for s in DATASETS.values() if protocol in s.expression_protocols), None)


def paper_column(dataset: str, expression_protocol: str = "dataset") -> str:
    """The paper column a run is set beside: the protocol's dataset's column when a protocol is
    chosen (``oulu6`` -> Oulu-CASIA, Table 4), else the dataset's own."""
    return (protocol_owner(expression_protocol) or get(dataset)).paper_column
