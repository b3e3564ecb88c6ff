"""Does a pretrained checkpoint fit an experiment profile? Checked before any work of a run.

Ming et al. 2019, Section 5.3: the multi-task network (and the *pretrained* / *fine-tuning* rows) start
from the single-task face network (trunk + BRANCH 1) pretrained with L1 (Eq. 2-4). Transfer is by layer
name (:func:`dynamic_mtl.transfer.load_pretrained`), so a checkpoint of another backbone fails there, late;
one of the right backbone but another image size or standardisation would load silently and give features
learnt on differently preprocessed images. This module reads the checkpoint's sidecar JSON
(``<checkpoint>.json``, or ``network.json`` in a ``dynamic-mtl pretrain --out`` folder; written by
``experiments.pretraining.train.network_metadata``) and compares it with the profile, without TensorFlow.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

#: sidecar key -> the ExperimentConfig attribute it must equal (None: a harness constant)
CHECKED_FIELDS = (
    "backbone",
    "backbone_options",
    "image_size",
    "standardize",
    "embedding_size",
    "channels",
    "crop_fraction",
)
HARNESS_CHANNELS = 3


class CheckpointMismatch(ValueError):
    """The pretrained checkpoint cannot start this profile's networks (one-line message)."""


def sidecar_path(checkpoint: str | Path) -> Path:
    """``<stem>.json`` next to a ``.keras`` file, or ``network.json`` in a pretraining output folder."""
    path = Path(checkpoint)
    return path / "network.json" if path.is_dir() else path.with_suffix(".json")


def read_sidecar(checkpoint: str | Path) -> dict[str, Any] | None:
    """The checkpoint's sidecar metadata, or None when it has none."""
    path = sidecar_path(checkpoint)
    if not path.is_file():
        return None
    try:
        meta = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise CheckpointMismatch(f"{path}: not valid JSON ({err.msg}, line {err.lineno})") from err
    if not isinstance(meta, dict):
        raise CheckpointMismatch(f"{path}: expected a JSON object, found {type(meta).__name__}")
    return meta


def archive_input_size(checkpoint: str | Path) -> int | None:
    """The input image size stored in a ``.keras`` archive's ``config.json`` (no TensorFlow), or None."""
    path = Path(checkpoint)
    path = path / "network.keras" if path.is_dir() else path
    try:
        with zipfile.ZipFile(path) as archive:
            config = json.loads(archive.read("config.json"))
    except (OSError, KeyError, zipfile.BadZipFile, json.JSONDecodeError):
        return None
    for layer in config.get("config", {}).get("layers", []):
        if layer.get("class_name") == "InputLayer":
            shape = layer.get("config", {}).get("batch_shape") or layer.get("config", {}).get("batch_input_shape")
            if shape and len(shape) == 4 and shape[1]:
                return int(shape[1])
    return None


def expected_fields(config) -> dict[str, Any]:
    """What the harness builds and feeds for ``config`` (an ``ExperimentConfig``), in sidecar terms."""
    from data_prep.pipeline import DEFAULT_CROP_FRACTION

    return {
        "backbone": config.backbone,
        "backbone_options": dict(config.backbone_options or {}),
        "image_size": int(config.image_size),
        "standardize": config.standardize,
        "embedding_size": config.embedding_size,
        "channels": HARNESS_CHANNELS,
        "crop_fraction": float(DEFAULT_CROP_FRACTION),
    }


def _same(key: str, have: Any, want: Any) -> bool:
    if key == "backbone_options":
        return dict(have or {}) == dict(want or {})
    if key == "crop_fraction":
        return abs(float(have) - float(want)) < 1e-6
    return have == want


def mismatches(meta: dict[str, Any], config) -> list[str]:
    """``"field: checkpoint X, profile Y"`` for each checked field that differs (absent fields are not checked)."""
    want = expected_fields(config)
    return [
        f"{key} {meta[key]!r} (checkpoint) vs {want[key]!r} (profile)"
        for key in CHECKED_FIELDS
        if key in meta and not _same(key, meta[key], want[key])
    ]


def check_checkpoint(checkpoint: str | Path, config) -> dict[str, Any]:
    """Raise :class:`CheckpointMismatch` (one line) when ``checkpoint`` does not fit ``config``.

    Returns what was checked: ``{"checkpoint", "sidecar", "checked": [...], "warning": str | None}``.
    Without a sidecar only the image size stored in the ``.keras`` archive is checked (the backbone is still
    checked by name when the weights are transferred), and a warning says so.
    """
    path = Path(checkpoint)
    if not path.exists():
        raise CheckpointMismatch(f"pretrained checkpoint {path} not found (run `dynamic-mtl pretrain` or fix the path)")
    meta = read_sidecar(path)
    name = getattr(config, "name", "this")
    if meta is None:
        size = archive_input_size(path)
        if size is not None and size != config.image_size:
            raise CheckpointMismatch(
                f"pretrained checkpoint {path} does not fit the {name!r} profile: image_size "
                f"{size} (checkpoint input) vs {config.image_size} (profile)"
            )
        return {
            "checkpoint": str(path),
            "sidecar": None,
            "checked": ["image_size"] if size else [],
            "warning": f"{sidecar_path(path).name} not found next to {path}: backbone and standardisation "
            "not checked (a `dynamic-mtl pretrain` export writes it)",
        }
    problems = mismatches(meta, config)
    if problems:
        raise CheckpointMismatch(
            f"pretrained checkpoint {path} does not fit the {name!r} profile: "
            f"{'; '.join(problems)}. Pretrain with the profile's settings, or pick a profile "
            "that matches the checkpoint"
        )
    return {
        "checkpoint": str(path),
        "sidecar": str(sidecar_path(path)),
        "checked": [k for k in CHECKED_FIELDS if k in meta],
        "warning": None,
    }


def check_pretrained(config) -> dict[str, Any] | None:
    """Resolve ``config.pretrained_checkpoint`` as the harness does and check it; None when there is none."""
    from experiments.face_expression.run import resolve_pretrained

    try:
        path = resolve_pretrained(config)
    except FileNotFoundError as err:
        raise CheckpointMismatch(str(err)) from err
    if path is None:
        return None
    report = check_checkpoint(path, config)
    if report["warning"]:
        print(f"[dynamic-mtl] warning: {report['warning']}", flush=True)
    return report
