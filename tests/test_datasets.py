"""data_prep/datasets.py: every dataset-dependent place reads the one registry, so a new dataset
is its reader module, one registry entry and this kind of test (docs/contributing.md)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from data_prep import datasets
from data_prep.datasets import CliOption, DatasetSpec
from data_prep.publish import recreate_command
from experiments.cli import build_parser, main
from experiments.face_expression.config import ExperimentConfig
from experiments.face_expression.paper_numbers import paper_dataset

CALLS: list[tuple] = []


def prepare_toy(root, out, flavour="plain", **kwargs) -> dict:
    """A stand-in reader: records its call and returns a prepare summary."""
    CALLS.append((str(root), str(out), flavour, kwargs))
    return {"dataset": "toy", "images": 0, "pairs": {"total": 0, "by_kind": {}}}


TOY = DatasetSpec(
    "toy",
    "Toy faces",
    f"{__name__}:prepare_toy",
    needs_raw_root=True,
    paper_column="oulu",
    help="a toy raw dataset",
    cli_options=(CliOption("--flavour", "flavour", {"choices": ("plain", "spicy"), "default": "plain"}),),
    expression_protocols={"toy2": {0: "happy", 1: "sadness"}},
)


@pytest.fixture
def toy(monkeypatch):
    monkeypatch.setitem(datasets.DATASETS, "toy", TOY)
    CALLS.clear()
    return TOY


def test_the_registry_names_the_papers_datasets_and_their_columns():
    assert list(datasets.DATASETS) == ["synthfaces", "ckplus", "oulu"]
    assert [datasets.get(n).display_name for n in ("ckplus", "oulu")] == ["CK+", "Oulu-CASIA"]
    assert datasets.expression_protocols() == ("dataset", "oulu6")
    assert paper_dataset("synthfaces", "dataset") == paper_dataset("ckplus", "dataset") == "ckplus"
    assert paper_dataset("oulu", "dataset") == paper_dataset("synthfaces", "oulu6") == "oulu"
    assert recreate_command("d", "ckplus") == "dynamic-mtl prepare ckplus --root /path/to/raw/ckplus --out d"
    assert recreate_command("d", "synthfaces") == "dynamic-mtl prepare synthfaces --out d"
    for spec in datasets.DATASETS.values():
        assert callable(spec.prepare_function())


def test_an_unknown_dataset_or_protocol_is_one_line_naming_the_choices():
    with pytest.raises(ValueError, match="dataset must be one of synthfaces, ckplus, oulu, got 'lfw'"):
        ExperimentConfig.load("tiny").override(dataset="lfw").validate()
    with pytest.raises(ValueError, match="expression_protocol must be one of dataset, oulu6, got 'x'"):
        ExperimentConfig.load("tiny").override(expression_protocol="x").validate()


def _choices(parser, *path):
    for name in path:
        parser = next(a for a in parser._actions if a.dest in ("command", "dataset")).choices[name]
    return parser


def test_a_registered_dataset_reaches_config_cli_prepare_and_paper_column(toy, tmp_path, capsys):
    # config validation, the paper column and the expression protocols read the registry
    ExperimentConfig.load("tiny").override(dataset="toy", expression_protocol="toy2").validate()
    assert paper_dataset("toy", "dataset") == "oulu"
    assert "toy2" in datasets.expression_protocols()
    # `run --dataset` and `prepare <dataset>` list it
    run = _choices(build_parser("run"), "run")
    assert "toy" in next(a for a in run._actions if a.dest == "dataset").choices
    prepare = _choices(build_parser("prepare"), "prepare")
    assert "toy" in next(a for a in prepare._actions if a.dest == "dataset").choices
    # `prepare toy` calls its prepare function with the raw options and its own option
    raw = tmp_path / "raw"
    raw.mkdir()
    code = main(["prepare", "toy", "--root", str(raw), "--out", str(tmp_path / "out"), "--flavour", "spicy", "--quiet"])
    assert code == 0 and json.loads(capsys.readouterr().out)["dataset"] == "toy"
    (root, out, flavour, kwargs) = CALLS[-1]
    assert (root, Path(out).name, flavour) == (str(raw), "out", "spicy")
    assert kwargs["num_folds"] == 10 and kwargs["progress"] is False
    assert recreate_command("d", "toy") == "dynamic-mtl prepare toy --root /path/to/raw/toy --out d"


def test_ensure_prepared_reads_a_raw_dataset_through_its_registry_entry(toy, tmp_path):
    from experiments.face_expression.data import ensure_prepared

    config = ExperimentConfig.load("tiny").override(dataset="toy", data_dir=str(tmp_path / "p"), data_root="raw")
    assert ensure_prepared(config, progress=False) == tmp_path / "p"
    assert CALLS[-1][:2] == ("raw", str(tmp_path / "p"))
