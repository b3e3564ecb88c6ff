"""Section 5.3: transferring the pretrained single-task face network into the multi-task model.

Ming et al. train the multi-task network from the pretrained trunk + BRANCH 1 (built and trained by
:mod:`dynamic_mtl.single_task`); the expression branch is trained "by transferring the learning of the
pretrained BRANCH 1".

* :func:`load_network` reads a checkpoint's functional network;
* :func:`load_pretrained` copies the weights, by layer name, into a multi-task model's network and
  initialises each ``expression_*`` layer from its ``face_*`` counterpart where the shapes match.

``SingleTaskFaceModel``, ``build_single_task_network`` and ``SINGLE_TASK_OUTPUTS`` are importable from
here too (their home is :mod:`dynamic_mtl.single_task`).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import keras

from dynamic_mtl.single_task import SINGLE_TASK_OUTPUTS, SingleTaskFaceModel, build_single_task_network

__all__ = [
    "EXPRESSION_PREFIX",
    "FACE_PREFIX",
    "SINGLE_TASK_OUTPUTS",
    "SingleTaskFaceModel",
    "TransferReport",
    "build_single_task_network",
    "load_network",
    "load_pretrained",
]

FACE_PREFIX, EXPRESSION_PREFIX = "face_", "expression_"


# ---------------------------------------------------------------------------------------- transfer
@dataclass
class TransferReport:
    """What :func:`load_pretrained` did, layer by layer."""

    checkpoint: str
    copied: list[str] = field(default_factory=list)  # same name, same shapes
    from_face: list[tuple[str, str]] = field(default_factory=list)  # (expression_* layer, face_* source)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (layer, reason): in both, not copied
    not_in_checkpoint: list[str] = field(default_factory=list)  # target layers left as initialised
    unused: list[str] = field(default_factory=list)  # checkpoint layers absent from the target
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.as_dict(), indent=2))
        return path

    def summary(self) -> str:
        lines = [
            f"transfer from {self.checkpoint}: {len(self.copied)} layers copied, "
            f"{len(self.from_face)} expression layers initialised from face layers, "
            f"{len(self.skipped)} skipped, {len(self.not_in_checkpoint)} not in the checkpoint"
        ]
        lines += [f"  skipped {name}: {why}" for name, why in self.skipped]
        if self.not_in_checkpoint:
            lines.append(f"  not in checkpoint (kept as initialised): {', '.join(self.not_in_checkpoint)}")
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()


def _network_of(model) -> keras.Model:
    network = getattr(model, "network", None)
    return network if isinstance(network, keras.Model) else model


def load_network(checkpoint_path: str | Path) -> keras.Model:
    """The functional network stored at ``checkpoint_path``.

    Accepts a ``.keras`` file of a functional network (what ``dynamic-mtl pretrain`` exports), of a
    :class:`SingleTaskFaceModel` (an epoch checkpoint) or of a ``DynamicMultiTaskModel``; or a
    pretraining output folder (its ``network.keras``).
    """
    import dynamic_mtl.layers  # noqa: F401  (registers the custom layers)
    import dynamic_mtl.model  # noqa: F401

    path = Path(checkpoint_path)
    if path.is_dir():
        if not (path / "network.keras").is_file():
            raise FileNotFoundError(f"{path} is a folder without network.keras (a `dynamic-mtl pretrain --out` folder)")
        path = path / "network.keras"
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path} (run `make pretrain` or `dynamic-mtl pretrain`)")
    if path.suffix != ".keras":
        raise ValueError(f"{path}: expected a .keras file (layer names are needed to transfer by name)")
    model = keras.saving.load_model(path, compile=False, safe_mode=True)
    return _network_of(model)


def _weight_shapes(layer) -> list[tuple]:
    return [tuple(w.shape) for w in layer.weights]


def load_pretrained(
    target_network_or_model, checkpoint_path: str | Path, expression_from_face: bool = True, strict: bool = True
) -> TransferReport:
    """Copy a pretrained trunk + BRANCH 1 into ``target_network_or_model``, by layer name.

    * Every target layer whose name and weight shapes match a checkpoint layer gets its weights
      (kernels, biases, batch-norm scale/offset and moving statistics).
    * ``identity_logits`` with a different class count (a new identity set) is skipped and reported.
    * With ``expression_from_face``, each ``expression_*`` layer that is not in the checkpoint is
      initialised from ``face_*`` (the same position in BRANCH 1) where the shapes match, as the authors
      did; the others (e.g. ``expression_hidden``, ``expression_logits``) keep their initialisation.
    * Center-loss centers and the dynamic weight unit are not transferred (noted in the report).

    ``target_network_or_model``: a ``DynamicMultiTaskModel`` (its ``network`` is loaded), a
    :class:`SingleTaskFaceModel` or a functional network. With ``strict`` (default) a trunk or
    BRANCH-1 layer that cannot be copied (other than ``identity_logits``) raises ``ValueError``,
    as does a checkpoint that shares no layer with the target (e.g. another backbone).
    """
    target = _network_of(target_network_or_model)
    source = load_network(checkpoint_path)
    report = TransferReport(str(checkpoint_path))
    src = {layer.name: layer for layer in source.layers if layer.weights}
    tgt = {layer.name: layer for layer in target.layers if layer.weights}
    done: set[str] = set()
    for name, layer in tgt.items():
        if name not in src:
            continue
        s_shapes, t_shapes = _weight_shapes(src[name]), _weight_shapes(layer)
        if s_shapes != t_shapes:
            if name == "identity_logits" and len(s_shapes) == len(t_shapes):
                why = f"class count differs: checkpoint {s_shapes[0][-1]}, model {t_shapes[0][-1]}"
            else:
                why = f"shape mismatch: checkpoint {s_shapes}, model {t_shapes}"
            report.skipped.append((name, why))
            continue
        layer.set_weights(src[name].get_weights())
        report.copied.append(name)
        done.add(name)
    if expression_from_face:
        for name, layer in tgt.items():
            if name in done or name in src or not name.startswith(EXPRESSION_PREFIX):
                continue
            face_name = FACE_PREFIX + name[len(EXPRESSION_PREFIX) :]
            if face_name in src and _weight_shapes(src[face_name]) == _weight_shapes(layer):
                layer.set_weights(src[face_name].get_weights())
                report.from_face.append((name, face_name))
                done.add(name)
    skipped_names = {n for n, _ in report.skipped}
    report.not_in_checkpoint = [n for n in tgt if n not in done and n not in skipped_names]
    report.unused = [n for n in src if n not in tgt]
    report.notes.append("center-loss centers and the dynamic weight unit are not transferred")
    if tuple(source.input.shape[1:]) != tuple(target.input.shape[1:]):
        report.notes.append(
            f"input shapes differ: checkpoint {tuple(source.input.shape[1:])}, "
            f"model {tuple(target.input.shape[1:])} (weights do not depend on the image size "
            "after global pooling, but the features were learnt at the checkpoint's size)"
        )
    if not report.copied:
        if set(src) & set(tgt) - {"identity_logits", "face_bottleneck"}:
            detail = "; ".join(f"{n}: {why}" for n, why in report.skipped[:4])
            raise ValueError(
                f"{checkpoint_path}: the layers match the model by name but not by shape ({detail}; ...). "
                "Build the model with the pretraining network options (backbone_options such as the "
                "small_cnn width, embedding_size, channels): see the checkpoint's .json sidecar."
            )
        raise ValueError(
            f"{checkpoint_path}: no layer of the checkpoint matches the model by name "
            f"(different backbone?). Checkpoint layers: {sorted(src)[:8]}..., "
            f"model layers: {sorted(tgt)[:8]}..."
        )
    if strict:
        missing = [n for n in tgt if n not in done and not n.startswith(EXPRESSION_PREFIX) and n != "identity_logits"]
        if missing:
            reasons = dict(report.skipped)
            detail = "; ".join(f"{n}: {reasons.get(n, 'not in checkpoint')}" for n in missing[:8])
            raise ValueError(
                f"{checkpoint_path}: {len(missing)} trunk / branch-1 layer(s) cannot be transferred "
                f"({detail}). Build the model with the pretraining network options (backbone, "
                f"embedding_size, channels), or pass strict=False to keep them as initialised."
            )
    return report
