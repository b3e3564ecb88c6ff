"""The README's Python example runs as printed."""
from __future__ import annotations

import re
from pathlib import Path


def test_readme_python_example_runs(tmp_path, monkeypatch):
    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert blocks, "README has no python example"
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(blocks[0], "README.md", "exec"), namespace)
    history = namespace["history"]
    assert len(history.history["identity_weight"]) == 2
    assert (tmp_path / "steps.csv").is_file()
    assert namespace["out"]["expression_probabilities"].shape == (4, 6)
