"""``dynamic-mtl pretrain``: the single-task face network (trunk + BRANCH 1) trained by L1 on identity folders.

Output folder (``--out``)::

    config.json            the resolved PretrainConfig: the run's record (checked on --resume; `--config` reads it)
    data/                  images.csv (path, identity, label), rejects.csv, layout_summary.json
    checkpoints/epoch_NNN.keras   full training state: network, centers, optimizer (last --keep-checkpoints)
    state.json             last completed epoch and its checkpoint (written after the checkpoint)
    network.keras, network.json   the trunk + BRANCH 1 network of the last epoch + its preprocessing
    history.csv            per-epoch loss, softmax/center loss, accuracy, learning rate, seconds, images/s
    tensorboard/           keras.callbacks.TensorBoard logs
    summary.json           run summary

The folder is a run directory of experiments/rundir.py: created and locked (``OUT/.lock``) for the run,
refused when it already holds files unless the run is resumed, every file of the run written under a
temporary name and renamed into place.

Resume: the model, its centers, batch-norm statistics and the optimizer state come from the
``.keras`` checkpoint; the input order and augmentation are stateless functions of (seed, epoch);
dropout's seed generators (not saved by Keras) are reset at each epoch start from (seed, epoch).
A resumed run therefore repeats the uninterrupted one (tested).
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd

from data_prep.pipeline import Preprocessing
from experiments import optimizers
from experiments.environment import describe_machine
from experiments.pretraining.config import DEFAULT_IMAGE_SIZE, PretrainConfig, check_out_folder
from experiments.rundir import RunError, atomic_save, atomic_write_text, check_resume, open_run_dir

#: Fields that may change between a run and its --resume.
RESUMABLE_CHANGES = (
    "data",
    "out",
    "epochs",
    "export",
    "keep_checkpoints",
    "strategy",
    "logical_cpus",
    "align_workers",
    "verify",
    "strict",
    "progress",
    "stop_after_epochs",
)


class PretrainError(RunError):
    """A pretraining run that cannot start (bad layout, batch size, rejected images under ``--strict``);
    an existing output or an incompatible resume is a :class:`~experiments.rundir.RunError`."""


# ------------------------------------------------------------------------------------------- data
def prepare_data(cfg: PretrainConfig, data_dir: Path, resume: bool, progress: bool, out: Path):
    """Scan (and with ``--align`` first align) the identity folders; reuse the saved scan on resume. The
    aligned images go to ``--aligned-dir``, else to ``<out>/aligned`` (``out``: this worker's folder)."""
    from data_prep.identity_folders import (
        align_identity_folders,
        read_scan_report,
        scan_identity_folders,
        write_scan_report,
    )

    root = Path(cfg.data) if cfg.aligned else Path(cfg.aligned_dir or Path(out) / "aligned")
    if resume and (data_dir / "images.csv").is_file():
        scan = read_scan_report(data_dir, str(root))
        print(
            f"resume: reusing the scan of {root} ({len(scan.images)} images, "
            f"{scan.num_identities} identities, {len(scan.rejects)} rejects)"
        )
        return scan, json.loads((data_dir / "layout_summary.json").read_text())
    align_rejects = None
    if not cfg.aligned:
        align_rejects = align_identity_folders(
            cfg.data,
            root,
            image_size=cfg.align_image_size,
            margin=cfg.align_margin,
            workers=cfg.align_workers,
            progress=progress,
        )
    scan = scan_identity_folders(
        root,
        min_images=cfg.min_images,
        verify=cfg.verify,
        progress=progress,
        strict=cfg.strict and align_rejects is None,
    )
    if align_rejects is not None and len(align_rejects):
        scan.rejects = pd.concat([align_rejects, scan.rejects], ignore_index=True)
        raw_ids = {p.name for p in Path(cfg.data).iterdir() if p.is_dir() and not p.name.startswith(".")}
        accounted = set(scan.images["identity"]) | set(
            scan.rejects.loc[scan.rejects["reason"].isin(["too_few_images", "empty_identity"]), "identity"]
        )
        lost = sorted(raw_ids - accounted)
        scan.rejects = pd.concat(
            [
                scan.rejects,
                pd.DataFrame(
                    {
                        "path": lost,
                        "identity": lost,
                        "reason": "empty_identity",
                        "detail": "every image of this identity was rejected by the aligner",
                    }
                ),
            ],
            ignore_index=True,
        )
        if cfg.strict:
            raise PretrainError(
                f"--strict: {len(align_rejects)} images rejected by the aligner "
                f"({dict(align_rejects['reason'].value_counts())})"
            )
    summary = write_scan_report(scan, data_dir)
    return scan, summary


def _print_layout(summary: dict, data_dir: Path) -> None:
    print(
        f"data: {summary['identities']} identities, {summary['images']} images "
        f"(per identity min {summary['images_per_identity']['min']}, median "
        f"{summary['images_per_identity']['median']:g}, max {summary['images_per_identity']['max']})"
    )
    if summary["rejects"]:
        print(
            f"data: {summary['rejects']} rejected entries {summary['rejects_by_reason']} -> {data_dir / 'rejects.csv'}",
            file=sys.stderr,
        )
    if summary.get("hidden_files_skipped"):
        print(f"data: {summary['hidden_files_skipped']} hidden files skipped")


# ------------------------------------------------------------------------------------------- model
def make_optimizer(cfg: PretrainConfig, steps: int):
    """``cfg.optimizer`` through the shared factory: Adam, the authors' RMSProp, or SGD with momentum 0.9;
    the learning rate multiplied by ``lr_decay_factor`` at each of ``lr_decay_epochs``."""
    options = {"adam": {}, "rmsprop": dict(optimizers.AUTHORS_RMSPROP), "sgd": {"momentum": 0.9}}[cfg.optimizer]
    if cfg.global_clipnorm:
        options["global_clipnorm"] = cfg.global_clipnorm
    rates = [cfg.learning_rate * cfg.lr_decay_factor**i for i in range(len(cfg.lr_decay_epochs) + 1)]
    return optimizers.make_optimizer(
        cfg.optimizer,
        rates if cfg.lr_decay_epochs else cfg.learning_rate,
        options,
        decay_epochs=cfg.lr_decay_epochs,
        steps_per_epoch=steps,
    )


def build_model(cfg: PretrainConfig, num_identities: int, steps: int):
    from dynamic_mtl.single_task import SingleTaskFaceModel, build_single_task_network

    network = build_single_task_network(
        num_identities,
        backbone=cfg.backbone,
        image_size=cfg.image_size,
        embedding_size=cfg.embedding_size,
        dropout_rate=cfg.dropout_rate,
        weight_decay=cfg.weight_decay,
        synchronized_batchnorm=cfg.synchronized_batchnorm,
        backbone_options=cfg.backbone_options,
    )
    model = SingleTaskFaceModel(
        network,
        center_loss_weight=cfg.center_loss_weight,
        center_update_rate=cfg.center_update_rate,
        name="single_task_face_model",
    )
    model.compile(make_optimizer(cfg, steps))
    return model


def network_metadata(cfg: PretrainConfig, num_identities: int, epochs_trained: int) -> dict[str, Any]:
    """The sidecar JSON of an exported network: what eval-lfw and the harness need to preprocess alike."""
    return {
        "format": "dynamic_mtl.pretrained_network/1",
        "backbone": cfg.backbone,
        "backbone_options": cfg.backbone_options,
        "image_size": cfg.image_size,
        "standardize": cfg.standardize,
        "crop_fraction": cfg.crop_fraction,
        "channels": 3,
        "embedding_size": cfg.embedding_size,
        "dropout_rate": cfg.dropout_rate,
        "weight_decay": cfg.weight_decay,
        "num_identities": num_identities,
        "epochs_trained": epochs_trained,
        "data": cfg.data,
        "center_loss_weight": cfg.center_loss_weight,
    }


def export_network(model, meta: dict, path: str | Path) -> Path:
    """Save the functional network (``.keras``) and its metadata (same stem, ``.json``), atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_save(path, model.network.save)
    atomic_write_text(path.with_suffix(".json"), json.dumps(meta, indent=2))
    return path


# ------------------------------------------------------------------------------------------- callbacks
def _callbacks(cfg: PretrainConfig, out: Path, num_identities: int, steps: int, initial_epoch: int) -> list:
    from experiments.pretraining.callbacks import EpochCheckpointer, EpochSeeds, TqdmProgress, tensorboard_callback

    def export(model, epoch: int) -> None:
        export_network(model, network_metadata(cfg, num_identities, epoch), out / "network.keras")

    callbacks = [
        EpochSeeds(cfg.seed),
        EpochCheckpointer(
            out, export, steps, cfg.batch_size, cfg.epochs, cfg.keep_checkpoints, initial_epoch, cfg.stop_after_epochs
        ),
        tensorboard_callback(out / "tensorboard"),
    ]
    if cfg.progress == "tqdm":
        callbacks.append(TqdmProgress((cfg.epochs - initial_epoch) * steps, cfg.epochs))
    return callbacks


# ------------------------------------------------------------------------------------------- run
def run_pretrain(cfg: PretrainConfig, resume: bool = False) -> dict[str, Any]:
    """Train (or resume) a pretraining run; returns the summary written to ``OUT/summary.json``.

    ``OUT`` is created and locked for the run (:func:`experiments.rundir.open_run_dir`); a folder that already
    holds files is refused without ``resume``, and ``resume`` continues it only with the same settings
    (other than :data:`RESUMABLE_CHANGES`). Raises :class:`~experiments.rundir.RunError` (one-line message)."""
    from dynamic_mtl.distribute import make_strategy, use_logical_cpus, worker_directory
    from experiments.cli import cli_prefix

    if cfg.logical_cpus:
        use_logical_cpus(cfg.logical_cpus)
    strategy = make_strategy(cfg.strategy)
    # MultiWorkerMirroredStrategy: every worker trains and saves; only the chief writes OUT and the export
    out = worker_directory(strategy, cfg.out)
    with open_run_dir(out):
        check_out_folder(out, resume)
        if resume and (out / "config.json").is_file():
            check_resume(
                PretrainConfig.load(out / "config.json").to_dict(),
                cfg.to_dict(),
                out,
                same_settings=f"{cli_prefix()} pretrain --config {out / 'config.json'} --resume",
                resumable=RESUMABLE_CHANGES,
                other="a new --out",
            )
        return _run_locked(cfg, out, resume, strategy)


def _run_locked(cfg: PretrainConfig, out: Path, resume: bool, strategy) -> dict[str, Any]:
    from dynamic_mtl.distribute import is_chief

    t0 = time.perf_counter()
    state_path = out / "state.json"
    state = json.loads(state_path.read_text()) if state_path.is_file() else None
    if resume and not state:
        print(f"resume: no checkpoint in {out}, starting from scratch")
    import keras

    from data_prep.identity_pipeline import make_identity_dataset, steps_per_epoch

    progress = cfg.progress != "none"
    data_dir = out / "data"
    scan, layout = prepare_data(cfg, data_dir, resume=bool(state), progress=progress, out=out)
    _print_layout(layout, data_dir)
    cfg.save(out / "config.json")
    num_ids = scan.num_identities
    replicas = strategy.num_replicas_in_sync
    if cfg.batch_size % replicas:
        raise PretrainError(f"--batch-size {cfg.batch_size} is not divisible by the {replicas} replicas")
    steps = steps_per_epoch(len(scan.images), cfg.batch_size)
    initial_epoch = int(state["epoch"]) if state else 0
    if state and (out / "history.csv").is_file():  # drop rows of an epoch that was cut after its row
        hist = pd.read_csv(out / "history.csv")
        atomic_write_text(out / "history.csv", hist[hist["epoch"] <= initial_epoch].to_csv(index=False))
    keras.utils.set_random_seed(cfg.seed)
    with strategy.scope():
        if state:
            import dynamic_mtl.single_task  # noqa: F401  (registers SingleTaskFaceModel)

            model = keras.saving.load_model(out / state["checkpoint"], compile=True, safe_mode=True)
            print(
                f"resume: epoch {initial_epoch} checkpoint {state['checkpoint']} "
                f"(optimizer step {int(model.optimizer.iterations.numpy())})"
            )
        else:
            model = build_model(cfg, num_ids, steps)
    print(
        f"model: {cfg.backbone} at {cfg.image_size} px, {num_ids} identities, "
        f"{model.network.count_params():,} parameters; {steps} steps/epoch of {cfg.batch_size} "
        f"({replicas} replica{'s' if replicas > 1 else ''}, strategy {cfg.strategy})"
    )
    trained_now = 0
    if initial_epoch < cfg.epochs:
        dataset = make_identity_dataset(
            scan.images["path"].tolist(),
            scan.images["label"].tolist(),
            Preprocessing(cfg.image_size, cfg.crop_fraction, cfg.flip, cfg.standardize),
            cfg.batch_size,
            cfg.epochs,
            initial_epoch,
            cfg.seed,
            root=scan.root,
        )
        history = model.fit(
            dataset,
            epochs=cfg.epochs,
            initial_epoch=initial_epoch,
            steps_per_epoch=steps,
            shuffle=False,
            callbacks=_callbacks(cfg, out, num_ids, steps, initial_epoch),
            verbose=1 if cfg.progress == "keras" else 0,
        )
        trained_now = len(history.epoch)
    else:
        print(f"all {cfg.epochs} epochs already done in {out}")
    done = json.loads(state_path.read_text())["epoch"] if state_path.is_file() else 0
    if not (out / "network.keras").is_file():
        export_network(model, network_metadata(cfg, num_ids, done), out / "network.keras")
    exported = None
    if cfg.export and done and is_chief(strategy):
        exported = Path(cfg.export)
        exported.parent.mkdir(parents=True, exist_ok=True)
        for source, target in (
            (out / "network.keras", exported),
            (out / "network.json", exported.with_suffix(".json")),
        ):
            atomic_save(target, lambda tmp, source=source: shutil.copyfile(source, tmp))
        print(f"exported the trunk + branch-1 network to {exported} (+ {exported.with_suffix('.json').name})")
    hist = pd.read_csv(out / "history.csv") if (out / "history.csv").is_file() else pd.DataFrame()
    summary = {
        "out": str(out),
        "epochs_done": done,
        "epochs_this_run": trained_now,
        "resumed_from_epoch": initial_epoch,
        "identities": num_ids,
        "images": int(len(scan.images)),
        "rejects": int(len(scan.rejects)),
        "rejects_by_reason": layout.get("rejects_by_reason", {}),
        "steps_per_epoch": steps,
        "train_seconds_total": round(float(hist["seconds"].sum()), 1) if len(hist) else 0.0,
        "images_per_second_mean": round(float(hist["images_per_second"].mean()), 1) if len(hist) else 0.0,
        "final": {k: float(v) for k, v in hist.iloc[-1].items()} if len(hist) else {},
        "network": str(out / "network.keras"),
        "exported": str(exported) if exported else None,
        "wall_seconds_this_run": round(time.perf_counter() - t0, 1),
        "config": cfg.to_dict(),
        "strategy": type(strategy).__name__,
        "replicas": replicas,
        "machine": describe_machine(),
    }
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=2, default=str))
    return summary


def clear_run(out: str | Path) -> None:
    """Remove a run folder's training state (used by tests and --overwrite)."""
    out = Path(out)
    for name in ("checkpoints", "tensorboard", "data"):
        shutil.rmtree(out / name, ignore_errors=True)
    for name in ("state.json", "history.csv", "summary.json", "config.json", "network.keras", "network.json"):
        (out / name).unlink(missing_ok=True)


__all__ = [
    "PretrainConfig",
    "PretrainError",
    "run_pretrain",
    "export_network",
    "network_metadata",
    "clear_run",
    "DEFAULT_IMAGE_SIZE",
]
