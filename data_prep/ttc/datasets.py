"""The datasets of the TTC experiments (Fang et al. 2017): one :class:`TTCDataset` entry each.

Everything ``experiments.ttc`` needs to know about a dataset is read from its entry: the loader and which
run settings it takes, whether it is read from ``--data-root`` (and how that folder is checked), whether its
tasks are face attributes (every image labelled for every task) or class pairs (an image labelled for one
task), and the paper's dataset and table it is set beside. A new dataset is a loader in ``data_prep/ttc/``, an
entry in :data:`DATASETS` and its defaults in ``experiments/ttc/config.py``.

This module imports only the standard library; the loaders are imported when a run loads its data.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass

#: ``TTCDataset.tasks``: face attributes (every image labelled for every task) or class pairs.
TASK_KINDS = ("attributes", "pairs")


@dataclass(frozen=True)
class TTCDataset:
    """One dataset of the TTC experiments.

    Attributes:
        name: the ``--dataset`` name.
        loader: ``"module:function"`` returning a :class:`~data_prep.ttc.common.TaskData`.
        arguments: the loader's keyword arguments, each named after the run value it takes: a field of the
            run's config (``size``, ``seed``, ``n_train``, ``data_root``, ...), ``tasks`` (the tasks the run
            needs), ``progress``, or ``split_limits`` (``{"train": max_train, "val": max_val, "test":
            max_test}``).
        needs_data_root: read from ``--data-root``; otherwise embedded or generated (no download).
        tasks: ``"attributes"`` (face attributes: every image labelled for every task) or ``"pairs"`` (class
            pairs: an image is labelled for the one task its class belongs to).
        paper_dataset: the paper's dataset the results are set beside (``CelebA``, ``CIFAR-10``).
        paper_table: the paper's table of the main comparison (``Table 4``: CelebA, ``Table 5``: CIFAR-10).
        paper_rows: how a task finds its row in that table: ``"name"`` (the paper's names), ``"position"``
            (the k-th task is the table's k-th row), or ``"module:MAPPING"`` (a dict task -> paper name).
        paper_note: the note under a run's main table (empty for the paper's own data).
        find_root: ``"module:function"`` that checks a ``--data-root`` (raises ``FileNotFoundError``).
        resize_after_load: the loader keeps the images' own size; the run resizes them to ``size``.
    """

    name: str
    loader: str
    arguments: Mapping[str, str]
    needs_data_root: bool
    tasks: str
    paper_dataset: str
    paper_table: str
    paper_rows: str = "name"
    paper_note: str = ""
    find_root: str | None = None
    resize_after_load: bool = False

    def __post_init__(self):
        if self.tasks not in TASK_KINDS:
            raise ValueError(f"{self.name}: tasks must be one of {TASK_KINDS}, got {self.tasks!r}")
        if self.needs_data_root != (self.find_root is not None):
            raise ValueError(f"{self.name}: a dataset read from --data-root needs find_root, and only it")

    @property
    def face_attributes(self) -> bool:
        """Whether the tasks are face attributes (CelebA-like) rather than class pairs (CIFAR-10-like)."""
        return self.tasks == "attributes"

    def load(self) -> Callable:
        """The loader function."""
        return _resolve(self.loader)

    def check_root(self, root) -> None:
        """Raises ``FileNotFoundError`` naming what is missing when ``root`` is not a folder of this dataset."""
        if self.find_root is None:
            raise ValueError(f"{self.name} is embedded: it reads no --data-root")
        _resolve(self.find_root)(root)

    def paper_names(self) -> Mapping[str, str] | None:
        """Task -> paper name for ``paper_rows = "module:MAPPING"``, else None."""
        return _resolve(self.paper_rows) if ":" in self.paper_rows else None


def _resolve(reference: str):
    module, name = reference.split(":")
    return getattr(importlib.import_module(module), name)


#: Every TTC dataset, by name (the order of ``--dataset`` choices and of the generated docs sections).
DATASETS: dict[str, TTCDataset] = {
    entry.name: entry
    for entry in (
        TTCDataset(
            "synthattrs",
            "data_prep.ttc.synthattrs:make_synthattrs",
            dict(
                n_train="n_train",
                n_val="n_val",
                n_test="n_test",
                size="size",
                tasks="tasks",
                seed="seed",
                progress="progress",
            ),
            needs_data_root=False,
            tasks="attributes",
            paper_dataset="CelebA",
            paper_table="Table 4",
            paper_rows="data_prep.ttc.synthattrs:CELEBA_NAME",
            paper_note="Paper columns are CelebA numbers shown for shape only (our data are synthetic faces).",
        ),
        TTCDataset(
            "digits",
            "data_prep.ttc.digits:load_digits_tasks",
            dict(size="size", seed="seed", train_per_class="train_per_class"),
            needs_data_root=False,
            tasks="pairs",
            paper_dataset="CIFAR-10",
            paper_table="Table 5",
            paper_rows="position",
            paper_note="Paper columns are CIFAR-10 numbers (by position) shown for shape only; our data are "
            "sklearn digits.",
        ),
        TTCDataset(
            "celeba",
            "data_prep.ttc.celeba:load_celeba_tasks",
            dict(
                root="data_root",
                attributes="tasks",
                size="size",
                max_per_split="split_limits",
                seed="seed",
                progress="progress",
            ),
            needs_data_root=True,
            tasks="attributes",
            paper_dataset="CelebA",
            paper_table="Table 4",
            find_root="data_prep.ttc.celeba:find_celeba_files",
        ),
        TTCDataset(
            "cifar10",
            "data_prep.ttc.cifar:load_cifar10_tasks",
            dict(root="data_root", seed="seed", max_train="max_train", max_test="max_test"),
            needs_data_root=True,
            tasks="pairs",
            paper_dataset="CIFAR-10",
            paper_table="Table 5",
            find_root="data_prep.ttc.cifar:find_cifar_dir",
            resize_after_load=True,
        ),
    )
}


def ttc_dataset(name: str) -> TTCDataset:
    """The entry of ``name``; ``ValueError`` naming the choices for an unknown one."""
    try:
        return DATASETS[name]
    except KeyError:
        raise ValueError(f"unknown dataset {name!r}; choose from {tuple(DATASETS)}") from None
