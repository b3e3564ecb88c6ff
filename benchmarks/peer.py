"""Side by side: each weighting method's step cost relative to a plain step, here and in LibMTL.

One run measures both, one after the other on the same machine: ``benchmarks.weighting_methods``
(this package's environment: the method's ``DynamicMultiTaskModel`` step / a plain Keras ``fit``
step) and ``benchmarks.peer_libmtl`` (the peer environment: LibMTL's method step / a plain
PyTorch step), same small CNN, batch and image size, CPU. Writes
``benchmarks/results/<date>-<host>-peer.md`` and ``.csv``; the table says, per method, whether
our ratio is at or below LibMTL's, and which methods LibMTL does not have.

    make bench-peer          # builds .venv-peer (PyTorch CPU + LibMTL) first
    python -m benchmarks.peer --peer-python .venv-peer/bin/python
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import subprocess
from pathlib import Path

from benchmarks.common import ROOT, ROW_FIELDS, child_env, machine, quick_mode, run_module, tiny_mode
from benchmarks.weighting_methods import METHODS

RESULTS = ROOT / "benchmarks" / "results"


def run_peer(python: str, module: str, timeout: float = 7200) -> list[dict]:
    """``python -m module`` in the peer environment; its ``BENCH_JSON`` rows."""
    out = subprocess.run(
        [python, "-m", module], capture_output=True, text=True, timeout=timeout, cwd=str(ROOT), env=child_env()
    )
    for line in out.stdout.splitlines():
        if line.startswith("BENCH_JSON "):
            return json.loads(line[len("BENCH_JSON ") :])["rows"]
    raise RuntimeError(f"{python} -m {module} failed (rc {out.returncode}):\n{out.stderr[-4000:]}")


def ratios(rows: list[dict], metric: str) -> dict:
    return {r["case"]: r for r in rows if r["metric"] == metric}


def fmt(r) -> str:
    if r is None:
        return "n/a"
    return f"{float(r['median']):.2f} [{float(r['min']):.2f}-{float(r['max']):.2f}]"


def table(ours: list[dict], peer: list[dict]) -> list[str]:
    lines = [
        "| method | ours: step / plain | LibMTL: step / plain | ours: CPU / plain | LibMTL: CPU / plain | "
        "ours <= LibMTL (step) |",
        "|---|---|---|---|---|---|",
    ]
    ours_wall, peer_wall = ratios(ours, "step time / plain"), ratios(peer, "step time / plain")
    ours_cpu, peer_cpu = ratios(ours, "CPU time / plain"), ratios(peer, "CPU time / plain")
    for method in METHODS:
        mine, theirs = ours_wall.get(method), peer_wall.get(method)
        verdict = (
            (
                "no LibMTL 1.1.5 run"
                if theirs is None
                else "yes"
                if float(mine["median"]) <= float(theirs["median"])
                else "**no**"
            )
            if mine
            else "not measured"
        )
        lines.append(
            f"| {method} | {fmt(mine)} | {fmt(theirs)} | {fmt(ours_cpu.get(method))} | "
            f"{fmt(peer_cpu.get(method))} | {verdict} |"
        )
    return lines


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--peer-python", default=str(ROOT / ".venv-peer" / "bin" / "python"))
    p.add_argument("--out", default=str(RESULTS))
    a = p.parse_args(argv)
    if not Path(a.peer_python).exists():
        p.error(f"no peer environment at {a.peer_python}; `make bench-peer` builds it")
    mode = "tiny" if tiny_mode() else "quick" if quick_mode() else "full"
    info = machine()
    ours = run_module("benchmarks.weighting_methods", [], timeout=7200)["rows"]
    peer = run_peer(a.peer_python, "benchmarks.peer_libmtl")
    stem = f"{dt.date.today().isoformat()}-{info.get('host', 'host')}-peer" + ("" if mode == "full" else f"-{mode}")
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    peer_section = next((r["section"] for r in peer), "LibMTL")
    lines = [
        f"# Weighting methods: step cost here and in LibMTL, {dt.date.today().isoformat()} ({mode})",
        "",
        f"Machine: {info.get('cpu', '?')}, {info.get('cores', '?')} logical cores, TensorFlow "
        f"{info.get('tensorflow', '?')}, Keras {info.get('keras', '?')}; peer: {peer_section}.",
        "",
        "Ratios are medians [min-max] over rounds of one step of every variant (rotating order), each "
        "taken against its own framework's plain step in the same round. Command: `make bench-peer`.",
        "",
        *table(ours, peer),
        "",
        "## All rows",
        "",
        "| side | case | metric | unit | median [min-max] | repeats |",
        "|---|---|---|---|---|---|",
    ]
    for side, rows in (("ours", ours), ("LibMTL", peer)):
        for r in rows:
            lines.append(f"| {side} | {r['case']} | {r['metric']} | {r['unit']} | {fmt(r)} | {r['repeats']} |")
    (out / f"{stem}.md").write_text("\n".join(lines) + "\n")
    with open(out / f"{stem}.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["side", *ROW_FIELDS], extrasaction="ignore")
        writer.writeheader()
        for side, rows in (("ours", ours), ("LibMTL", peer)):
            for r in rows:
                writer.writerow({"side": side, **r})
    print("\n".join(table(ours, peer)))
    print(f"[bench-peer] wrote {out / stem}.md and .csv")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
