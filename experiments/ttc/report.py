"""Tables (CSV + Markdown, with the paper's numbers beside ours), alpha files and figures of a TTC run."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from data_prep.ttc.common import TaskData
from data_prep.ttc.datasets import ttc_dataset
from dynamic_mtl.ttc.shares import influence_shares, removal_share_change
from experiments import markdown
from experiments.rundir import atomic_write, atomic_write_text
from experiments.ttc import paper, plots
from experiments.ttc.config import TTCConfig

MODELS = ("ST", "MT", "DMT", "CrossStitch", "ST_long")
#: |phi| at or above which a task pair counts as related in the ground-truth check.
RELATED_PHI = 0.1


def paper_table(dataset: str) -> dict:
    """The paper's main table the dataset is set beside (Table 4: CelebA, Table 5: CIFAR-10)."""
    return paper.TABLE4 if ttc_dataset(dataset).paper_table == "Table 4" else paper.TABLE5


def paper_rows(dataset: str, names: Sequence[str]) -> list[str | None]:
    """The paper's row (Table 4 / 5 task) that each of our tasks is compared with (the registry entry's
    ``paper_rows``: the same names, a mapping to them, or by position)."""
    entry, table = ttc_dataset(dataset), paper_table(dataset)
    if entry.paper_rows == "position":  # shape only
        order = list(table)
        return [order[i] if i < len(order) else None for i in range(len(names))]
    mapping = entry.paper_names() or {}
    return [mapping.get(n, n) if mapping.get(n, n) in table else None for n in names]


def main_table(dataset: str, names, accs: dict, removal: dict | None) -> pd.DataFrame:
    """Table 4 / 5 shape: per task, the paper's numbers and ours (accuracy %, mean class accuracy)."""
    rows = []
    face = ttc_dataset(dataset).face_attributes
    for t, (name, ref) in enumerate(zip(names, paper_rows(dataset, names))):
        row = {"task": name, "paper task": ref or ""}
        ref_vals = paper_table(dataset).get(ref) if ref else None
        labels = ("ST", "MT", "DMT", "DMT removal") if face else ("ST", "MT", "DMT")
        for k, label in enumerate(labels):
            row[f"paper {label}"] = ref_vals[k] if ref_vals and ref_vals[k] is not None else np.nan
        for model in MODELS:
            if model in accs:
                row[f"ours {model}"] = 100.0 * accs[model][t]
        if removal is not None:
            kept = removal["kept"]
            row["ours DMT removal"] = 100.0 * removal["acc_after"][kept.index(name)] if name in kept else np.nan
        rows.append(row)
    df = pd.DataFrame(rows)
    mean = {"task": "mean", "paper task": ""}
    for col in df.columns[2:]:
        mean[col] = df[col].mean() if df[col].notna().all() else np.nan
    return pd.concat([df, pd.DataFrame([mean])], ignore_index=True)


def table3_frame(dataset: str, config: TTCConfig, data: TaskData, long: pd.DataFrame) -> pd.DataFrame:
    """Table 3 shape: rows regime x model, one column per task (ours) and the paper's counterpart."""
    tasks = [t for g in config.table3_groups for t in g]
    refs = list(paper.TABLE3_TASKS) if ttc_dataset(dataset).face_attributes else []
    train = data.summary().query("split == 'train'").set_index("task")
    rows = [
        dict(
            regime="minority proportion",
            model="",
            **{f"{t}": train.loc[t, "minority_proportion"] for t in tasks},
            **{f"paper {r}": m for r, m in zip(refs, paper.TABLE3_MINORITY)},
        )
    ]
    for regime in ("imbalanced", "resampled"):
        for model in ("ST", "MT", "DMT"):
            sel = long[(long.regime == regime) & (long.model == model)].set_index("task")["accuracy"]
            row = dict(regime=regime, model=model, **{t: 100.0 * sel[t] for t in tasks})
            row.update({f"paper {r}": v for r, v in zip(refs, paper.TABLE3[regime][model])})
            rows.append(row)
    return pd.DataFrame(rows)


def table6_shares(removal: dict, layer: int = -1) -> dict[str, np.ndarray]:
    """Share-based Table 6 (:func:`dynamic_mtl.ttc.shares.removal_share_change`) of the paper's variant
    ("connections only"), in percentage points, receiver rows."""
    out = removal_share_change(removal["alpha_full"][layer], removal["alpha_after"][layer], removal["keep_index"])
    return {k: 100.0 * v for k, v in out.items()}


def _from_to(matrix_to_from: np.ndarray, kept, dataset: str, paper_values: bool) -> pd.DataFrame:
    """A receiver-row matrix shown the paper's way: rows From (sender), columns To (receiver)."""
    table = pd.DataFrame(np.asarray(matrix_to_from).T, index=kept, columns=kept).round(1)
    table.insert(0, "From \\ To", kept)
    refs = paper_rows(dataset, kept) if ttc_dataset(dataset).face_attributes else [None] * len(kept)
    if paper_values and all(r in paper.TABLE6_TASKS for r in refs):
        order = [paper.TABLE6_TASKS.index(r) for r in refs]
        ref = np.asarray(paper.TABLE6, dtype=float)[np.ix_(order, order)]
        for k in range(len(kept)):
            table[f"paper To {refs[k]}"] = ref[:, k]
    return table


def removal_frames(
    dataset: str, removal: dict, main_names
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(share-based Table 6 at the last TTC with its per-receiver check rows, raw alpha change at the last TTC,
    long alpha table of all layers and variants, accuracy per removal variant)."""
    kept = removal["kept"]
    shares = table6_shares(removal)
    last = _from_to(shares["change"], kept, dataset, paper_values=True)
    checks = pd.DataFrame(
        [
            {"From \\ To": "sum of the column", **dict(zip(kept, shares["change"].sum(axis=1).round(1)))},
            {"From \\ To": "removed tasks' former share", **dict(zip(kept, shares["removed_share"].round(1)))},
        ]
    )
    last = pd.concat([last, checks], ignore_index=True)
    delta = 100.0 * (removal["alpha_after"] - removal["alpha_start"])  # [layer, to, from]
    raw = _from_to(delta[-1], kept, dataset, paper_values=False)
    rows = []
    for variant, result in removal["variants"].items():
        for l in range(delta.shape[0]):
            share = table6_shares(dict(removal, alpha_after=result["alpha_after"]), layer=l)
            for i, to in enumerate(kept):
                for j, frm in enumerate(kept):
                    rows.append(
                        dict(
                            variant=variant,
                            layer=l + 1,
                            to=to,
                            **{"from": frm},
                            alpha_before=removal["alpha_start"][l, i, j],
                            alpha_after=result["alpha_after"][l, i, j],
                            alpha_delta_pp=100.0 * (result["alpha_after"][l, i, j] - removal["alpha_start"][l, i, j]),
                            share_before_pp=share["share_before"][i, j],
                            share_after_pp=share["share_after"][i, j],
                            share_delta_pp=share["change"][i, j],
                        )
                    )
    acc = pd.DataFrame(
        dict(
            task=kept,
            **{
                "DMT (all tasks)": 100.0 * removal["acc_before"],
                "cut": 100.0 * removal["acc_cut"],
                "cut + statistics re-estimated (baseline)": 100.0 * removal["acc_stats"],
                **{
                    f"{v} re-trained" + (" (paper)" if v == "connections only" else " (extension)"): 100.0 * r["acc"]
                    for v, r in removal["variants"].items()
                },
            },
        )
    )
    return last, raw, pd.DataFrame(rows), acc


def groundtruth_frames(alphas: np.ndarray, phi: np.ndarray, names) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per layer: Spearman(alpha_sym, |phi|) and mean alpha of related vs unrelated pairs; per task: the
    partner with the largest alpha (last TTC) vs the partner with the largest |phi|."""
    T = len(names)
    iu = np.triu_indices(T, 1)
    rel = np.abs(phi)[iu]
    related = rel >= RELATED_PHI
    rows = []
    for label, a in [*((str(l + 1), alphas[l]) for l in range(alphas.shape[0])), ("mean", alphas.mean(0))]:
        sym = ((a + a.T) / 2)[iu]
        rho = spearmanr(sym, rel).statistic if np.ptp(sym) > 0 else np.nan
        rows.append(
            dict(
                layer=label,
                spearman_alpha_vs_abs_phi=float(rho),
                mean_alpha_related=float(sym[related].mean()) if related.any() else np.nan,
                mean_alpha_unrelated=float(sym[~related].mean()) if (~related).any() else np.nan,
                related_pairs=int(related.sum()),
                unrelated_pairs=int((~related).sum()),
            )
        )
    last = alphas[-1]
    partners = []
    for i, name in enumerate(names):
        others = [j for j in range(T) if j != i]
        top_alpha = max(others, key=lambda j: last[i, j])
        top_phi = max(others, key=lambda j: abs(phi[i, j]))
        has_partner = abs(phi[i, top_phi]) >= RELATED_PHI
        partners.append(
            dict(
                task=name,
                top_alpha_partner=names[top_alpha],
                alpha=round(float(last[i, top_alpha]), 3),
                top_phi_partner=names[top_phi] if has_partner else "(none related)",
                abs_phi=round(float(abs(phi[i, top_phi])), 3),
                match=(top_alpha == top_phi) if has_partner else "n/a",
            )
        )
    return pd.DataFrame(rows), pd.DataFrame(partners)


def _focus(names) -> str:
    for cand in ("no_beard", "No_Beard"):
        if cand in names:
            return cand
    return names[0]


def write_all(
    run_dir: Path,
    config: TTCConfig,
    data: TaskData,
    main: dict,
    removal: dict,
    incremental: dict | None,
    table3: pd.DataFrame | None,
    timings: dict,
    env: dict,
) -> dict:
    """Writes every table, alpha file and figure; returns the headline numbers (also results.json)."""
    run_dir = Path(run_dir)
    fig_dir = run_dir / "figures"
    names = main["names"]
    sections = [
        f"# TTC run `{config.run_id}` on `{config.dataset}`\n",
        f"Machine: {env['machine']}; TensorFlow {env['tensorflow']}, "
        f"Keras {env['keras']}. Wall time {timings['total']:.0f} s. Profile `{config.profile}`, "
        f"{config.steps_per_task} turns per task, input {data.input_shape}, width x{config.width}.\n",
    ]
    results: dict = dict(dataset=config.dataset, run_id=config.run_id, seconds=timings["total"])

    # Tables 4 / 5
    table = main_table(config.dataset, names, main["accs"], removal)
    atomic_write_text(run_dir / "table_main.csv", table.to_csv(index=False))
    entry = ttc_dataset(config.dataset)
    what = f"{entry.paper_table} ({entry.paper_dataset}{', 7 attributes' if entry.face_attributes else ''})"
    note = entry.paper_note
    md = f"## {what}-shaped results (mean class accuracy %, test split)\n\n{note}\n\n{markdown.frame_table(table)}\n"
    atomic_write_text(run_dir / "table_main.md", md)
    sections.append(md)
    present = [m for m in MODELS if m in main["accs"]]
    results["mean_accuracy"] = {m: round(float(100 * np.mean(main["accs"][m])), 2) for m in present}
    results["tasks"] = list(names)
    results["accuracy"] = {m: [float(v) for v in main["accs"][m]] for m in present}
    results["val_accuracy"] = {
        m: [float(v) for v in main["val_accs"][m]] for m in present if m in main.get("val_accs", {})
    }

    # alphas
    dmt, cs = main["models"]["DMT"], main["models"].get("CrossStitch")
    arrays = dict(
        task_names=np.asarray(names),
        dmt=dmt.alpha_matrices(),
        **({} if cs is None else dict(crossstitch=cs.alpha_matrices())),
        history_steps=main["history_steps"],
        history_alphas=main["history_alphas"],
    )
    atomic_write(run_dir / "alphas.npz", lambda handle: np.savez(handle, **arrays))
    for l, a in enumerate(dmt.alpha_matrices()):
        atomic_write_text(
            run_dir / f"alphas_dmt_layer{l + 1}.csv", pd.DataFrame(a, index=names, columns=names).to_csv()
        )
    focus = _focus(names)
    plots.save(plots.plot_alpha_matrices(dmt.alpha_matrices(), names), fig_dir / "alpha_matrices_dmt.png")
    if cs is not None:
        plots.save(
            plots.plot_alpha_matrices(cs.alpha_matrices(), names, "Cross-stitch weights per layer"),
            fig_dir / "alpha_matrices_crossstitch.png",
        )
    last_layer = dmt.alpha_matrices().shape[0] - 1
    for suffix, shares in (("", True), ("_raw", False)):  # shares: the paper-comparable figures; raw: extras
        plots.save(
            plots.plot_alpha_history(
                main["history_steps"], main["history_alphas"], names, focus, layer=last_layer, shares=shares
            ),
            fig_dir / f"alpha_history{suffix}.png",
        )
        plots.save(
            plots.plot_alpha_by_layer(dmt.alpha_matrices(), names, focus, shares=shares),
            fig_dir / f"alpha_by_layer{suffix}.png",
        )
    shares_last = pd.DataFrame(influence_shares(dmt.alpha_matrices()[-1]), index=names, columns=names)
    atomic_write_text(run_dir / "shares_dmt_last_layer.csv", shares_last.to_csv())

    # ground truth (synthattrs)
    if "phi" in data.meta:
        idx = [data.task_names.index(n) for n in names]
        phi = np.asarray(data.meta["phi"])[np.ix_(idx, idx)]
        gt, partners = groundtruth_frames(dmt.alpha_matrices(), phi, names)
        atomic_write_text(run_dir / "alpha_groundtruth.csv", gt.to_csv(index=False))
        atomic_write_text(run_dir / "alpha_partners.csv", partners.to_csv(index=False))
        atomic_write_text(run_dir / "groundtruth_phi.csv", pd.DataFrame(phi, index=names, columns=names).to_csv())
        plots.save(
            plots.plot_alpha_vs_groundtruth(dmt.alpha_matrices(), phi, names), fig_dir / "alpha_vs_groundtruth.png"
        )
        md = (
            f"## Do the alphas find the related tasks? (Sec. 4.3; ground truth = |phi| of the generator's "
            f"labels, related if >= {RELATED_PHI})\n\n{markdown.frame_table(gt, '{:.3f}')}\n\n"
            f"Strongest partner per task (last TTC) vs ground truth:\n\n{markdown.frame_table(partners, '{:.3f}')}\n"
        )
        atomic_write_text(run_dir / "alpha_groundtruth.md", md)
        sections.append(md)
        mean_row = gt[gt.layer == "mean"].iloc[0]
        results["groundtruth"] = dict(
            spearman_mean_layers=round(float(mean_row.spearman_alpha_vs_abs_phi), 3),
            spearman_last_layer=round(float(gt.iloc[-2].spearman_alpha_vs_abs_phi), 3),
            partner_matches=sum(bool(m) for m in partners["match"] if not isinstance(m, str)),
            tasks_with_related_partner=sum(not isinstance(m, str) for m in partners["match"]),
        )

    # removal (Table 4 last row, Table 6)
    t6, t6_raw, long, acc = removal_frames(config.dataset, removal, names)
    atomic_write_text(run_dir / "table6_share_change.csv", t6.to_csv(index=False))
    atomic_write_text(run_dir / "table6_alpha_change_raw.csv", t6_raw.to_csv(index=False))
    atomic_write_text(run_dir / "removal_alphas.csv", long.to_csv(index=False))
    atomic_write_text(run_dir / "removal_accuracy.csv", acc.to_csv(index=False))
    kept = removal["kept"]
    off = ~np.eye(len(kept), dtype=bool)
    d_last = 100.0 * (removal["alpha_after"][-1] - removal["alpha_start"][-1])[off]
    share = table6_shares(removal)
    md = (
        f"## Task removal (Sec. 4.3): removed {removal['removed']}, subnets frozen "
        f"(bit-identical after retraining: {removal['subnets_unchanged']})\n\n"
        f"Accuracy % of the kept tasks: the full model; right after the cut; after re-estimating the batch-norm "
        f"statistics on each kept task's training images (no gradient step: the baseline); then re-training "
        f"the connections (betas) only, the paper's procedure; or the betas and the BNs after the mixings "
        f"(an extension). Both re-trainings start from the re-estimated statistics and draw the same "
        f"batches.\n\n{markdown.frame_table(acc)}\n\n"
        f"Table 6 (paper-comparable): change of each sender's share of a receiver's input, "
        f"alpha_ij / sum_k alpha_ik (self included), in the last TTC (layer 6 -> 7), percentage points, after "
        f"re-training the connections; rows From, columns To. Per receiver (column) the changes add up to the "
        f"removed tasks' former share (last two rows).\n\n{markdown.frame_table(t6)}\n\n"
        f"Extra: raw alpha change (pp), same layer and orientation (the diagonal alpha_ii = 1 is fixed):\n\n"
        f"{markdown.frame_table(t6_raw)}\n\nOff-diagonal raw change: mean {d_last.mean():+.1f} pp, "
        f"{int((d_last > 0).sum())} of {d_last.size} entries increased.\n"
    )
    atomic_write_text(run_dir / "table6_share_change.md", md)
    sections.append(md)
    results["removal"] = dict(
        removed=removal["removed"],
        kept=kept,
        mean_acc_before=round(float(100 * removal["acc_before"].mean()), 2),
        mean_acc_cut=round(float(100 * removal["acc_cut"].mean()), 2),
        mean_acc_stats=round(float(100 * removal["acc_stats"].mean()), 2),
        mean_acc_after=round(float(100 * removal["acc_after"].mean()), 2),
        mean_acc_variants={v: round(float(100 * r["acc"].mean()), 2) for v, r in removal["variants"].items()},
        accuracy={
            "before": [float(v) for v in removal["acc_before"]],
            "cut": [float(v) for v in removal["acc_cut"]],
            "stats": [float(v) for v in removal["acc_stats"]],
            **{v: [float(x) for x in r["acc"]] for v, r in removal["variants"].items()},
        },
        share_change_pp=np.round(share["change"], 3).tolist(),
        removed_former_share_pp=np.round(share["removed_share"], 3).tolist(),
        mean_offdiag_alpha_change_pp=round(float(d_last.mean()), 2),
        subnets_bit_identical=removal["subnets_unchanged"],
    )

    # incremental (Figure 6)
    if incremental is not None:
        curve, s = incremental["curve"], incremental["summary"]
        atomic_write_text(run_dir / "incremental_curve.csv", curve.to_csv(index=False))
        atomic_write_text(run_dir / "incremental_summary.json", json.dumps(s, indent=2))
        plots.save(plots.plot_incremental_curve(curve, s["threshold"], s["task"]), fig_dir / "incremental_curve.png")

        def shown(v):
            return "not reached" if v is None else v

        rows = pd.DataFrame(
            [
                dict(
                    measure=f"steps to val error <= {s['threshold']}",
                    alone=shown(s["steps_alone"]),
                    incremental=shown(s["steps_incremental"]),
                    speedup=s["speedup_threshold"] or "n/a",
                    paper=f"about {paper.FIGURE6_SPEEDUP:.0f}x",
                ),
                dict(
                    measure=f"steps to the alone model's final error ({s['alone_final_error']:.3f})",
                    alone=shown(s["steps_alone_to_alone_final"]),
                    incremental=shown(s["steps_incremental_to_alone_final"]),
                    speedup=s["speedup_alone_final"] or "n/a",
                    paper="",
                ),
                dict(
                    measure="test accuracy % at the end",
                    alone=f"{100 * s['test_acc_alone']:.1f}",
                    incremental=f"{100 * s['test_acc_incremental']:.1f}",
                    speedup="",
                    paper="",
                ),
            ],
            dtype=object,
        )
        md = (
            f"## Incremental addition of `{s['task']}` (Sec. 4.4, Figure 6)\n\nBoth curves from the same "
            f"batches: {s['same_batches']}. Old subnets frozen and "
            f"bit-identical afterwards: {s['old_subnets_bit_identical']}; max change of the old tasks' logits: "
            f"{s['old_task_logit_max_change']:.1e}.\n\n{markdown.frame_table(rows)}\n"
        )
        atomic_write_text(run_dir / "incremental_summary.md", md)
        sections.append(md)
        results["incremental"] = {
            k: s[k]
            for k in (
                "task",
                "steps_alone",
                "steps_incremental",
                "speedup_threshold",
                "speedup_alone_final",
                "test_acc_alone",
                "test_acc_incremental",
                "same_batches",
                "steps_alone_to_alone_final",
                "steps_incremental_to_alone_final",
            )
        }

    # Table 3
    if table3 is not None:
        atomic_write_text(run_dir / "table3_long.csv", table3.to_csv(index=False))
        t3 = table3_frame(config.dataset, config, data, table3)
        atomic_write_text(run_dir / "table3.csv", t3.to_csv(index=False))
        results["table3"] = table3.to_dict(orient="records")
        md = (
            f"## Table 3 shape: two-task groups {config.table3_groups}, trained on the imbalanced vs the "
            f"resampled training set (accuracy %; first row: minority proportion)\n\n"
            + (
                "Paper columns: Bald, Wearing_Hat, Mustache, Goatee (CelebA) by position.\n\n"
                if entry.paper_names() is not None
                else ""
            )
            + f"{markdown.frame_table(t3, '{:.2f}')}\n"
        )
        atomic_write_text(run_dir / "table3.md", md)
        sections.append(md)

    timing = pd.DataFrame(sorted(timings.items()), columns=["phase", "seconds"])
    atomic_write_text(run_dir / "timings.csv", timing.to_csv(index=False))
    sections.append(f"## Timings (s)\n\n{markdown.frame_table(timing)}\n")
    atomic_write_text(run_dir / "summary.md", "\n".join(sections))
    atomic_write_text(run_dir / "results.json", json.dumps(results, indent=2, default=float))
    return results
