"""Run every benchmark and write ``benchmarks/results/<date>-<host>.md`` and ``.csv``.

    python -m benchmarks.run                 # full (make bench)
    BENCH_QUICK=1 python -m benchmarks.run   # reduced sizes and repeats
    python -m benchmarks.run --only train_small,pipeline_small --out /tmp/results

Each benchmark runs in its own process (TensorFlow's device set-up is fixed per process, and
memory is per process). A failing benchmark is reported in the results and the run goes on;
the exit status is 1 if any failed. A full run of everything also refreshes the summary table in
docs/performance.md (between its ``bench:summary`` markers).
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import os
import sys
import time
import traceback
from pathlib import Path

from benchmarks.common import ROOT, ROW_FIELDS, machine, quick_mode, run_module, tiny_mode

RESULTS = ROOT / "benchmarks" / "results"
DOC = ROOT / "docs" / "performance.md"
SUMMARY_START, SUMMARY_END = "<!-- bench:summary:start -->", "<!-- bench:summary:end -->"
PAPER = "inception_resnet_v1_reduced"


def plan(quick: bool, tiny: bool) -> list[tuple[str, str, list[str]]]:
    """(name, module, arguments) in run order; ``{memory_data}`` is filled from the memory step."""
    steps = [
        ("syncs", "benchmarks.train_step", ["--part", "syncs"]),
        ("train_small", "benchmarks.train_step", ["--part", "weightings", "--backbone", "small_cnn"]),
        ("train_paper", "benchmarks.train_step", ["--part", "weightings", "--backbone", PAPER]),
        ("weighting_methods", "benchmarks.weighting_methods", []),
        ("xla_small", "benchmarks.train_step", ["--part", "xla", "--backbone", "small_cnn"]),
        ("xla_paper", "benchmarks.train_step", ["--part", "xla", "--backbone", PAPER]),
        ("xla_agreement", "benchmarks.train_step", ["--part", "xla-agreement"]),
        ("memory", "benchmarks.memory", []),
        ("pipeline_small", "benchmarks.pipeline", ["--profile", "small", "--data", "{memory_data}"]),
        ("pipeline_paper", "benchmarks.pipeline", ["--profile", "paper"]),
        ("harness", "benchmarks.harness", []),
        ("ttc", "benchmarks.ttc", []),
        ("mtcnn", "benchmarks.mtcnn", []),
        ("scale", "benchmarks.scale", []),
        ("multiworker", "benchmarks.multiworker", []),
    ]
    if tiny:  # the harness's own smoke test: the small network only
        steps = [s for s in steps if s[0] not in ("train_paper", "xla_paper", "pipeline_paper")]
    elif quick:  # XLA's compile of the paper network alone takes minutes on CPU
        steps = [s for s in steps if s[0] != "xla_paper"]
    return steps


def fmt(value) -> str:
    if value is None or value == "":
        return ""
    v = float(value)
    if v == 0:
        return "0"
    if abs(v) < 1e-3:
        return f"{v:.1e}"
    if abs(v) >= 100:
        return f"{v:.0f}"
    return f"{v:.3g}"


def cell(r: dict) -> str:
    if r["repeats"] and int(r["repeats"]) > 1:
        return f"{fmt(r['median'])} [{fmt(r['min'])}-{fmt(r['max'])}]"
    return fmt(r["median"])


def is_summary(r: dict) -> bool:
    m, case, section = r["metric"], r["case"], r["section"]
    return bool(r["target"]) or any(
        (
            m.startswith("CPU time / plain") and case in ("dynamic", "gradnorm"),
            m.startswith("step time / plain") and case == "gradnorm",
            m.startswith("step time / plain") and section.startswith("weighting methods"),
            m == "step time jit=True / jit=False",
            m.startswith("max relative difference"),
            m.startswith("peak RSS, main process") or (m == "peak RSS"),
            case == "workers=2 / workers=1",
            m == "step time / 1 device" and not case.startswith("1 "),
            m == "median step time ratio",
            m == "throughput" and case in ("dynamic", "pipeline") and "train step" in section,
            m == "throughput" and case == "pipeline",
        )
    )


def load_sentence(loads: tuple[float, float] | None, info: dict) -> str:
    """How busy the machine was: 1-minute load average at the start and end of the run vs its cores."""
    if not loads:
        return "The machine's load during the run was not recorded."
    cores = info.get("cores", "?")
    return (
        f"1-minute load average {loads[0]:.1f} at the start and {loads[1]:.1f} at the end of the run "
        f"({cores} cores; a load above the core count means other jobs shared the machine)."
    )


def markdown(
    rows: list[dict], info: dict, mode: str, failures: dict, minutes: float, loads: tuple[float, float] | None = None
) -> tuple[str, str]:
    """The whole results page, and its summary table alone (for docs/performance.md and the README)."""
    machine_line = (
        f"{info.get('cpu', '?')}, {info.get('cores', '?')} logical cores, "
        f"{info.get('memory_gb', '?')} GB RAM, TensorFlow {info.get('tensorflow', '?')}, "
        f"Keras {info.get('keras', '?')}, Python {info.get('python', '?')}, "
        f"host `{info.get('host', '?')}`; GPU: {', '.join(info.get('gpus') or []) or 'none'}"
    )
    summary = [
        f"Machine: {machine_line}. Mode: {mode}, {dt.date.today().isoformat()}.",
        "",
        "| benchmark | case | metric | median [min-max] | target |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        if is_summary(r):
            summary.append(
                f"| {r['section']} | {r['case']} | {r['metric']} ({r['unit']}) | {cell(r)} | {r['target']} |"
            )
    summary += [
        "",
        "GPU timings (paper profile images/s and the train-step ratio on a GPU) are not measured yet: "
        "no GPU was available for this run."
        if not info.get("gpus")
        else "",
    ]
    summary_text = "\n".join(summary).rstrip() + "\n"
    lines = [
        f"# Benchmarks {dt.date.today().isoformat()} ({mode})",
        "",
        f"Machine: {machine_line}.",
        "",
        f"Total run time {minutes:.1f} min. Figures are medians over repeats with [min-max]; the things in "
        "one table were measured in the same process, interleaved. "
        f"{load_sentence(loads, info)} CPU-time ratios (process CPU seconds) are the steadier measure "
        "of cost on a shared machine. How each figure is measured: docs/performance.md.",
        "",
        "## Summary",
        "",
        summary_text,
        "## All results",
        "",
    ]
    by_section: dict[str, list[dict]] = {}
    for r in rows:
        by_section.setdefault(r["section"], []).append(r)
    for section, items in by_section.items():
        lines += [
            f"### {section}",
            "",
            "| case | metric | unit | median [min-max] | repeats | target | note |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in items:
            lines.append(
                f"| {r['case']} | {r['metric']} | {r['unit']} | {cell(r)} | {r['repeats']} | "
                f"{r['target']} | {r['note']} |"
            )
        lines.append("")
    if failures:
        lines += ["## Failed benchmarks", ""]
        for name, err in failures.items():
            lines += [f"### {name}", "", "```", err[-3000:], "```", ""]
    return "\n".join(lines), summary_text


def update_doc(summary: str) -> bool:
    if not DOC.is_file():
        return False
    text = DOC.read_text()
    if SUMMARY_START not in text or SUMMARY_END not in text:
        return False
    head, rest = text.split(SUMMARY_START, 1)
    _, tail = rest.split(SUMMARY_END, 1)
    DOC.write_text(f"{head}{SUMMARY_START}\n{summary}{SUMMARY_END}{tail}")
    return True


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", default="", help="comma-separated benchmark names (default: all)")
    p.add_argument("--out", default=str(RESULTS), help="results directory")
    p.add_argument("--no-doc", action="store_true", help="do not refresh docs/performance.md")
    a = p.parse_args(argv)
    quick, tiny = quick_mode(), tiny_mode()
    mode = "tiny" if tiny else "quick" if quick else "full"
    only = {s for s in a.only.split(",") if s}
    steps = [s for s in plan(quick, tiny) if not only or s[0] in only]
    unknown = only - {s[0] for s in plan(quick, tiny)}
    if unknown:
        p.error(f"unknown benchmark(s) {sorted(unknown)}")
    t_start = time.perf_counter()
    load_start = os.getloadavg()[0]
    info = machine()
    rows, failures, memory_data = [], {}, None
    for name, module, args in steps:
        if "{memory_data}" in args:
            args = [x for x in args if x != "--data" and x != "{memory_data}"]
            if memory_data:
                args += ["--data", memory_data]
        t0 = time.perf_counter()
        print(f"[bench] {name} ...", flush=True)
        try:
            payload = run_module(module, args, timeout=3600)
        except Exception:  # noqa: BLE001  report and go on
            failures[name] = traceback.format_exc()
            print(f"[bench] {name} FAILED ({time.perf_counter() - t0:.0f} s)", flush=True)
            continue
        for r in payload["rows"]:
            r["benchmark"] = name
        rows += payload["rows"]
        if name == "memory":
            prepared = payload.get("prepared", {})
            if prepared:  # the pipeline benchmark reads the middle-sized dataset
                keys = sorted(prepared, key=int)
                memory_data = prepared[keys[len(keys) // 2]]
        print(f"[bench] {name} done ({time.perf_counter() - t0:.0f} s)", flush=True)
    minutes = (time.perf_counter() - t_start) / 60
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"{dt.date.today().isoformat()}-{info.get('host', 'host')}" + ("" if mode == "full" else f"-{mode}")
    stem += "-only-" + "+".join(sorted(only)) if only else ""  # a subset never overwrites the day's full run
    page, summary = markdown(rows, info, mode, failures, minutes, (load_start, os.getloadavg()[0]))
    (out / f"{stem}.md").write_text(page)
    with open(out / f"{stem}.csv", "w", newline="") as handle:
        fields = ["date", "mode", "host", "cpu", "cores", "tensorflow", "benchmark", *ROW_FIELDS]
        writer = csv.DictWriter(handle, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        for r in rows:
            writer.writerow(
                {
                    "date": dt.date.today().isoformat(),
                    "mode": mode,
                    "host": info.get("host"),
                    "cpu": info.get("cpu"),
                    "cores": info.get("cores"),
                    "tensorflow": info.get("tensorflow"),
                    **r,
                }
            )
    if mode == "full" and not a.no_doc and not failures and not only:
        update_doc(summary)
    print(f"[bench] wrote {out / stem}.md and .csv ({minutes:.1f} min); failures: {sorted(failures) or 'none'}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
