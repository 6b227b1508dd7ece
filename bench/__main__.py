"""Every bench, each as its own process one after the other, then one table of figures: `make bench`.

Not a test: it prints figures. Usage:

    .venv/bin/python -m bench [--only cancellations,reads,waiting,disruption] [--database-url URL]
                              [--cancellations-n 200] [--cancellations-c 10]
                              [--reads-d 10] [--reads-c 20] [--waiting-n 1000] [--waiting-c 20]
                              [--disruption-n 1000] [--disruption-c 20]

Each bench writes its figures with --json; the table shows, per figure, the project's, its
reference's (measured in the same run), their ratio and the target of issue 12. The machine's
load average is printed too: on a shared machine the figures are noisy.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.stack import REPO

BENCHES = ("cancellations", "reads", "waiting", "disruption")
BOUND_S = {"cancellations": 900.0, "reads": 600.0, "waiting": 3600.0, "disruption": 3600.0}


@dataclass(frozen=True)
class Row:
    what: str
    project: str
    reference: str
    ratio: str
    target: str
    met: str


def _ratio(value: float) -> str:
    return "—" if math.isnan(value) else f"{value:.2f}×"


def _met(ok: bool) -> str:
    return "yes" if ok else "NO"


def _rate_and_p99(f: dict[str, Any], rate: str, p99: str, min_ratio: float, max_p99_ms: float,
                  decimals: int, in_seconds: bool) -> list[Row]:
    """A throughput row (the ratio against the reference) and a p99 row (an absolute limit)."""
    mine, ref = f["project"], f["reference"]

    def latency(ms: float) -> str:
        return f"{ms / 1000:.2f} s" if in_seconds else f"{ms:.1f} ms"

    limit = f"≤ {latency(max_p99_ms)}".replace(".00 s", " s").replace(".0 ms", " ms")
    return [
        Row(rate, f"{mine['rate']:.{decimals}f}", f"{ref['rate']:.{decimals}f}", _ratio(f["ratio"]),
            f"≥ {min_ratio:.2f}×", _met(f["ratio"] >= min_ratio)),
        Row(p99, latency(mine["p99_ms"]), latency(ref["p99_ms"]), _ratio(mine["p99_ms"] / ref["p99_ms"]), limit,
            _met(mine["p99_ms"] <= max_p99_ms)),
    ]


def reads_rows(f: dict[str, Any]) -> list[Row]:
    c = f["connections"]
    rows = _rate_and_p99(f, f"reads: req/s, GET reservation vs hello-world ({c} conn)", f"reads: p99 latency ({c} conn)",
                         0.10, 20, decimals=0, in_seconds=False)
    limit = f.get("limit")
    if limit:  # PostgreSQL only: aiohttp + asyncpg doing the same database work (bench/limit_reads.py)
        rows.append(Row(f"reads: req/s vs aiohttp + asyncpg, same work ({c} conn)", f"{f['project']['rate']:.0f}",
                        f"{limit['rate']:.0f}", _ratio(f["limit_ratio"]), "≥ 0.50×", _met(f["limit_ratio"] >= 0.5)))
    return rows


def cancellations_rows(f: dict[str, Any]) -> list[Row]:
    c = f["concurrency"]
    return _rate_and_p99(f, f"cancellations: flows/s, automatic vs bare (c={c})", f"cancellations: p99 latency (c={c})",
                         0.70, 600, decimals=1, in_seconds=True)


def waiting_rows(f: dict[str, Any]) -> list[Row]:
    mine, ref = f["project"], f["reference"] or {}
    ratio = f["ratio"] or {}
    measured = f["n"] >= 10_000

    def of(figures: dict[str, Any], pick: Callable[[dict[str, Any]], str]) -> str:
        return pick(figures) if figures else "—"

    rss = mine["worker_rss_at_10k_mb"]
    capped = mine.get("worker_rss_at_10k_cache_full_mb", rss)
    fired_all = mine["fired"] == mine["flows"]
    lag = mine["lag"]["p99_s"]
    rss_rows = [Row(f"waiting: worker RSS at 10k flows, measured (n={f['n']})", f"{rss:.0f} MB",
                    of(ref, lambda r: f"{r['worker_rss_at_10k_mb']:.0f} MB"), _ratio(ratio.get("worker_rss_per_flow", math.nan)),
                    "≤ 300 MB", _met(rss <= 300))] if measured else [
        Row(f"waiting: worker RSS at 10k, linear from n={f['n']}", f"{rss:.0f} MB",
            of(ref, lambda r: f"{r['worker_rss_at_10k_mb']:.0f} MB"), _ratio(ratio.get("worker_rss_per_flow", math.nan)),
            "≤ 300 MB", _met(rss <= 300)),
        Row("waiting: worker RSS at 10k, 1000-flow cache full", f"{capped:.0f} MB",
            of(ref, lambda r: f"{r['worker_rss_at_10k_cache_full_mb']:.0f} MB"),
            _ratio(capped / ref["worker_rss_at_10k_cache_full_mb"] if ref else math.nan), "≤ 300 MB", _met(capped <= 300)),
    ]
    return [
        *rss_rows,
        Row("waiting: deadlines fired", f"{mine['fired']}/{mine['flows']}", of(ref, lambda r: f"{r['fired']}/{r['flows']}"),
            "—", "every one", _met(fired_all)),
        Row("waiting: deadline lag p99", f"{lag:.2f} s", of(ref, lambda r: f"{r['lag']['p99_s']:.2f} s"),
            _ratio(lag / ref["lag"]["p99_s"] if ref and ref["lag"]["p99_s"] > 0 else math.nan), "≤ 5 s",
            _met(lag <= 5 and fired_all)),
        Row(f"waiting: starts/s (c={f['concurrency']})", f"{mine['starts']['rate']:.1f}",
            of(ref, lambda r: f"{r['starts']['rate']:.1f}"), _ratio(ratio.get("start_rate", math.nan)), "—", "—"),
        Row("waiting: worker idle CPU", _idle(mine), of(ref, _idle), "—", "—", "—"),
    ]


def _idle(figures: dict[str, Any]) -> str:
    idle = figures["cpu_percent"]["idle"]
    return "not measured" if idle is None else f"{idle['worker']:.1f}%"


def disruption_rows(f: dict[str, Any]) -> list[Row]:
    mine, ref, ratio, n = f["project"], f["reference"], f["ratio"], f["n"]
    worker_rss = mine["rss_mb"]["worker"]["after"]
    return [
        Row(f"disruption: intake answer, {mine['answer']['affected']} products", f"{mine['intake_ms']:.0f} ms", "—", "—",
            "≤ 1 s", _met(mine["intake_ms"] <= 1000)),
        Row("disruption: flows started/s vs bare starts", f"{mine['started']['rate']:.1f}", f"{ref['started']['rate']:.1f}",
            _ratio(ratio["start_rate"]), "≥ 0.50×", _met(ratio["start_rate"] >= 0.5)),
        Row("disruption: defaults drained/s after the deadline", f"{mine['drain']['rate']:.1f}",
            f"{ref['drain']['rate']:.1f}", _ratio(ratio["drain_rate"]), "≥ 0.70×", _met(ratio["drain_rate"] >= 0.7)),
        Row("disruption: lag p99 / max", f"{mine['lag']['p99_s']:.2f} / {mine['lag']['max_s']:.2f} s",
            f"{ref['lag']['p99_s']:.2f} / {ref['lag']['max_s']:.2f} s", "—", "—", "—"),
        Row(f"disruption: worker RSS (n={n})", f"{worker_rss:.0f} MB", f"{ref['rss_mb']['worker']['after']:.0f} MB", "—",
            "≤ 300 MB at 10k", _met(worker_rss <= 300) if n >= 10_000 else "—"),
        Row("disruption: every product auto_accepted once", "yes" if f["exactly_once"] else "NO", "—", "—", "every one",
            _met(f["exactly_once"])),
    ]


ROWS: dict[str, Callable[[dict[str, Any]], list[Row]]] = {
    "cancellations": cancellations_rows, "reads": reads_rows, "waiting": waiting_rows, "disruption": disruption_rows,
}


def table(rows: list[Row]) -> str:
    header = Row("what", "project", "reference", "ratio", "target", "met")
    lines = [header, *rows]
    widths = [max(len(getattr(row, field)) for row in lines) for field in Row.__dataclass_fields__]

    def line(row: Row) -> str:
        return "  ".join(getattr(row, field).ljust(width) for field, width in zip(Row.__dataclass_fields__, widths, strict=True))

    return "\n".join([line(header), "  ".join("-" * w for w in widths), *(line(row) for row in rows)])


def options(name: str, args: argparse.Namespace) -> list[str]:
    return {
        "cancellations": ["-n", str(args.cancellations_n), "-c", str(args.cancellations_c)],
        "reads": ["-d", str(args.reads_d), "-c", str(args.reads_c)],
        "waiting": ["-n", str(args.waiting_n), "-c", str(args.waiting_c)],
        "disruption": ["-n", str(args.disruption_n), "-c", str(args.disruption_c)],
    }[name] + (["--database-url", args.database_url] if args.database_url else [])


def main(args: argparse.Namespace) -> int:
    chosen = [name for name in BENCHES if name in args.only.split(",")]
    out = Path(tempfile.mkdtemp(prefix="aftersales-benches-"))
    rows: list[Row] = []
    failed: list[str] = []
    load_before = os.getloadavg()
    for name in chosen:
        figures_file = out / f"{name}.json"
        argv = [sys.executable, "-m", f"bench.{name}", *options(name, args), "--json", str(figures_file)]
        print(f"\n=== {' '.join(argv[1:])}", flush=True)
        try:
            finished = subprocess.run(argv, cwd=REPO, timeout=BOUND_S[name]).returncode == 0
        except subprocess.TimeoutExpired:
            finished = False
        if finished and figures_file.exists():
            rows += ROWS[name](json.loads(figures_file.read_text()))
        else:
            failed.append(name)
            rows.append(Row(f"{name}: FAILED (see its output above)", "—", "—", "—", "—", "NO"))
    print(f"\nAftersales benches ({', '.join(chosen)}), database={args.database_url or 'sqlite'}; "
          f"load average {load_before[0]:.2f} before, {os.getloadavg()[0]:.2f} after (2 cores: noisy figures)\n")
    print(table(rows))
    print(f"\nfigures of each bench: {out}")
    return 1 if failed else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(BENCHES), help="comma-separated, of: " + ", ".join(BENCHES))
    parser.add_argument("--database-url", default=None, help="passed to every bench (PostgreSQL: a throwaway database each)")
    parser.add_argument("--cancellations-n", type=int, default=200)
    parser.add_argument("--cancellations-c", type=int, default=10)
    parser.add_argument("--reads-d", type=float, default=10.0)
    parser.add_argument("--reads-c", type=int, default=20)
    parser.add_argument("--waiting-n", type=int, default=1000)
    parser.add_argument("--waiting-c", type=int, default=20)
    parser.add_argument("--disruption-n", type=int, default=1000)
    parser.add_argument("--disruption-c", type=int, default=20)
    sys.exit(main(parser.parse_args()))
