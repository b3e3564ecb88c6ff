"""The README's Python examples run as printed."""

from __future__ import annotations

import re
from pathlib import Path


def _blocks():
    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def _run(block, tmp_path, monkeypatch) -> dict:
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(block, "README.md", "exec"), namespace)
    return namespace


def test_readme_face_example_runs(tmp_path, monkeypatch):
    namespace = _run(_blocks()[0], tmp_path, monkeypatch)
    assert len(namespace["history"].history["identity_weight"]) == 2
    assert (tmp_path / "steps.csv").is_file()
    assert namespace["out"]["expression_probabilities"].shape == (4, 6)


def test_readme_any_task_example_runs(tmp_path, monkeypatch):
    namespace = _run(_blocks()[1], tmp_path, monkeypatch)
    keys = set(namespace["history"].history)
    assert {"digit_loss", "digit_accuracy", "digit_weight", "size_mae", "tags_loss", "val_size_mae"} <= keys
    out = namespace["out"]
    assert out["digit_probabilities"].shape == (4, 10) and out["size_values"].shape[0] == 4
