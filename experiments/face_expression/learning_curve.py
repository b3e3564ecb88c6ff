"""Learning curves of finished runs: the per-step task losses and the per-epoch validation scores, as CSV + PNG.

Used for the paper profile's validation on the embedded data (docs/fidelity.md, "paper profile" rows):

    python -m experiments.face_expression.learning_curve --out docs/paper-profile \\
        paper=results/synthfaces/paper-profile-fold0 paper_literal=results/synthfaces/paper-literal-fold0

Writes ``OUT/steps.csv`` (run, method, fold, step, epoch, w_identity, loss_identity, loss_expression,
network_loss), ``OUT/epochs.csv`` (run, method, fold, epoch, training losses and accuracies, val_* scores,
chance levels), ``OUT/tests.csv`` (per_fold.csv rows with their run) and ``OUT/learning_curve.png``.
Chance levels: verification 0.5 (balanced pairs), expression the share of the most frequent class among the
fold's validation images (what a constant prediction scores).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from experiments.face_expression.histories import read_histories

STEP_COLUMNS = ["step", "epoch", "w_identity", "loss_identity", "loss_expression", "network_loss"]


def _expression_chance(run: Path, fold: int) -> float:
    """Majority-class share among the validation images of ``fold`` (the run's own split)."""
    from experiments.face_expression.config import ExperimentConfig
    from experiments.face_expression.data import load_prepared

    config = ExperimentConfig.load(run / "config.yaml")
    split = load_prepared(config).split(fold, config.validation_subjects, config.seed)
    labels = split.validation["expression"]
    labels = labels[labels >= 0]
    return float(labels.value_counts(normalize=True).max())


def collect(runs: dict[str, Path]) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    steps, epochs, tests = [], [], []
    for name, run in runs.items():
        run = Path(run)
        if not (run / "per_fold").is_dir():
            raise FileNotFoundError(f"{run}: not a run directory (no per_fold/)")
        for path in sorted((run / "steps").glob("*_fold*.csv")):
            method, fold = path.stem.rsplit("_fold", 1)
            frame = pd.read_csv(path)[STEP_COLUMNS]
            steps.append(frame.assign(run=name, method=method, fold=int(fold)))
        for method, fold, frame in read_histories(run):
            epochs.append(
                frame.assign(
                    run=name,
                    method=method,
                    fold=fold,
                    verification_chance=0.5,
                    expression_chance=_expression_chance(run, fold),
                )
            )
        if (run / "per_fold.csv").is_file():
            tests.append(pd.read_csv(run / "per_fold.csv").assign(run=name))
    front = ["run", "method", "fold"]

    def order(frames):
        frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=front)
        return frame[front + [c for c in frame.columns if c not in front]]

    return order(steps), order(epochs), order(tests)


def plot(steps: pd.DataFrame, epochs: pd.DataFrame, title: str = ""):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = sorted({tuple(k) for frame in (steps, epochs) for k in frame[["run", "method"]].itertuples(index=False)})
    colors = plt.get_cmap("tab20")
    color = {key: colors(i % 20) for i, key in enumerate(keys)}  # one colour per (run, method) in all panels
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.4))
    for (run, method, _fold), frame in steps.groupby(["run", "method", "fold"]):
        for ax, column in zip(axes[:2], ("loss_identity", "loss_expression")):
            ax.plot(frame["step"], frame[column], color=color[(run, method)], lw=1)
    for ax, name in zip(axes[:2], ("identity loss L1 (softmax + center)", "expression loss L2 (softmax)")):
        ax.set_yscale("log")
        ax.set_xlabel("training step (batch 90)")
        ax.set_title(name)
    for (run, method, _fold), frame in epochs.groupby(["run", "method", "fold"]):
        x, c = frame["epoch"] + 1, color[(run, method)]
        axes[2].plot(x, frame["val_verification_accuracy"], "o-", color=c, ms=3)
        axes[2].plot(x, frame["val_expression_accuracy"], "s--", color=c, ms=3)
        axes[2].axhline(frame["expression_chance"].iloc[0], color="grey", lw=0.8, ls=":")
    axes[2].axhline(0.5, color="grey", lw=0.8, ls=":")
    axes[2].set_xlabel("epoch")
    axes[2].set_title("validation: verification (o-), expression (s--); dotted: chance", fontsize=9)
    handles = [plt.Line2D([], [], color=color[key], label=f"{key[0]}: {key[1]}") for key in keys]
    fig.legend(handles=handles, loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m experiments.face_expression.learning_curve", description=__doc__.split("\n\n")[0]
    )
    p.add_argument("runs", nargs="+", metavar="NAME=RUN_DIR", help="runs to draw, each named")
    p.add_argument("--out", required=True, help="folder for steps.csv, epochs.csv, tests.csv, learning_curve.png")
    p.add_argument("--title", default="", help="figure title (say the data, the machine and the command)")
    a = p.parse_args(argv)
    runs = {}
    for item in a.runs:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            print(f"learning_curve: error: expected NAME=RUN_DIR, got {item!r}", file=sys.stderr)
            return 2
        runs[name] = Path(path)
    try:
        steps, epochs, tests = collect(runs)
    except FileNotFoundError as err:
        print(f"learning_curve: error: {err}", file=sys.stderr)
        return 2
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    steps.to_csv(out / "steps.csv", index=False)
    epochs.to_csv(out / "epochs.csv", index=False)
    tests.to_csv(out / "tests.csv", index=False)
    plot(steps, epochs, a.title).savefig(out / "learning_curve.png", dpi=110, bbox_inches="tight")
    print(f"wrote {out}/steps.csv, epochs.csv, tests.csv, learning_curve.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
