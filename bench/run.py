"""The runner: `python -m bench --quick` (smoke, < 2 min) or `python -m bench --full`.

Creates its own databases (`dentbook_bench_*`) on DATABASE_URL (a privileged role; else an
embedded PostgreSQL in a temporary directory), runs the benchmarks one after another, each
after waiting (bounded) for the machine's 1-minute load to fall below --max-load, writes
bench/results/latest.{md,json} (quick: bench/results/quick/) and drops the databases.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import fanout, growth, outbox, pages, race, throughput
from bench.common import FULL, QUICK, REPO, Row, load1, machine, raise_nofile, settle
from bench.data import Context, Db

BENCHES: dict[str, Callable[[Context], Coroutine[Any, Any, list[Row]]]] = {
    "race": race.run, "throughput": throughput.run, "fanout": fanout.run, "pages": pages.run,
    "growth": growth.run, "outbox": outbox.run,
}
DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    # The last of --quick / --full wins, so `nox -s bench -- --quick` overrides the session's --full.
    p.add_argument("--quick", dest="mode", action="store_const", const="quick", default="quick",
                   help="small N/K, under two minutes: checks that it works (default)")
    p.add_argument("--full", dest="mode", action="store_const", const="full",
                   help="the sizes the README reports (about 8 minutes on 2 cores)")
    p.add_argument("--only", default="", help=f"comma-separated subset of {', '.join(BENCHES)}")
    p.add_argument("--database-url", default=os.environ.get("DATABASE_URL", ""),
                   help="privileged URL of a PostgreSQL server (default: $DATABASE_URL, else the "
                        "embedded PostgreSQL, data next to the default data directory + '-bench')")
    p.add_argument("--max-load", type=float, default=1.0,
                   help="wait for the 1-minute load to fall below this before each benchmark")
    p.add_argument("--settle", type=float, default=None,
                   help="longest wait for that, seconds (quick: 0, full: 300)")
    p.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    p.add_argument("--merge", action="store_true",
                   help="with --only: replace just those benchmarks in the existing latest.json/.md "
                        "(e.g. to re-run one that started while the machine was busy)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    mode = FULL if args.mode == "full" else QUICK
    selected = [b.strip() for b in args.only.split(",") if b.strip()] or list(BENCHES)
    unknown = set(selected) - set(BENCHES)
    if unknown:
        print(f"unknown benchmark(s): {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    settle_s = mode.settle_seconds if args.settle is None else args.settle
    nofile = raise_nofile()
    out: Path = args.out if mode is FULL else args.out / "quick"
    out.mkdir(parents=True, exist_ok=True)
    started = datetime.now(UTC)
    t0 = time.monotonic()
    report: dict[str, Any] = {"mode": mode.name, "started": started.isoformat(timespec="seconds"),
                              "machine": machine(), "open_files_limit": nofile, "benches": {}}
    rows: list[Row] = []
    embedded = None
    with tempfile.TemporaryDirectory(prefix="dentbook-bench-") as tmp:
        server_url = args.database_url
        if not server_url:
            from dentbook.embedded import EmbeddedPostgres, default_data_dir

            # Like the tests: a data directory of its own next to the default one.
            embedded = EmbeddedPostgres(Path(str(default_data_dir()) + "-bench"))
            embedded.start()
            server_url = embedded.url(database="postgres")
        report["database"] = "embedded PostgreSQL" if embedded else _server_version(server_url)
        logs = Path(tmp) / "logs"
        logs.mkdir()
        db = None
        try:
            db = Db.create(server_url, "main")
            ctx = Context(mode=mode, db=db, out=out, logs=logs, max_load=args.max_load)
            for name in selected:
                info = settle(args.max_load, settle_s, name)
                info["started"] = datetime.now(UTC).isoformat(timespec="seconds")
                b0 = time.monotonic()
                try:
                    got = asyncio.run(BENCHES[name](ctx))
                    info["ok"] = True
                except Exception as exc:
                    traceback.print_exc()
                    got = [Row(name, "failed", f"{type(exc).__name__}: {exc}"[:200], "", None, "")]
                    info["ok"] = False
                    _tail_logs(logs)
                info["seconds"] = round(time.monotonic() - b0, 1)
                info["load1_at_end"] = load1()
                report["benches"][name] = info
                rows += got
                for r in got:
                    print(f"  {r.bench:10} {r.case:45} {r.ours:32} | {r.baseline:40} | "
                          f"{_ratio(r.ratio)} {r.ratio_means}", flush=True)
        finally:
            if db is not None:
                db.drop()
            if embedded is not None:
                embedded.stop()
    report["seconds"] = round(time.monotonic() - t0)
    report["rows"] = [r.as_dict() for r in rows]
    if args.merge and (out / "latest.json").exists():
        report, rows = _merged(json.loads((out / "latest.json").read_text()), report)
    (out / "latest.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    (out / "latest.md").write_text(markdown(report, rows))
    print(f"\nwrote {out}/latest.md and latest.json ({report['seconds']} s)")
    return 0 if all(b.get("ok") for b in report["benches"].values()) else 1


def _merged(old: dict[str, Any], new: dict[str, Any]) -> tuple[dict[str, Any], list[Row]]:
    """`old` with the benchmarks of `new` replaced (rows and load figures), in the usual order."""
    if old.get("mode") != new["mode"]:
        raise SystemExit(f"--merge: existing results are {old.get('mode')}, this run is {new['mode']}")
    fresh = set(new["benches"])
    merged = dict(old, benches={}, rows=[], seconds=None, merged=True)
    for name in BENCHES:
        source = new if name in fresh else old
        if name in source["benches"]:
            merged["benches"][name] = source["benches"][name]
            merged["rows"] += [r for r in source["rows"] if r["bench"] == name]
    return merged, [Row(**r) for r in merged["rows"]]


def _server_version(url: str) -> str:
    import psycopg

    with psycopg.connect(url) as conn:
        row = conn.execute("show server_version").fetchone()
    return f"PostgreSQL {row[0] if row else '?'} (DATABASE_URL)"


def _tail_logs(logs: Path) -> None:
    for path in sorted(logs.glob("*.log")):
        lines = path.read_text(errors="replace").splitlines()[-15:]
        if lines:
            print(f"--- {path.name} (last lines)\n" + "\n".join(lines), file=sys.stderr)


def _ratio(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}×"


def markdown(report: dict[str, Any], rows: list[Row]) -> str:
    m = report["machine"]
    loads = ", ".join(f"{name} {info['load1_at_start']:.2f}→{info['load1_at_end']:.2f}"
                      + (f" (run {info['started'][11:16]} UTC)" if "started" in info else "")
                      for name, info in report["benches"].items())
    took = (f"{report['seconds']} s" if report.get("seconds") else
            "benchmarks re-run separately (--merge), see times below")
    out = [
        f"# dentbook benchmarks ({report['mode']})",
        "",
        f"Run {report['started']}, {took}. Machine: {m['nproc']} cores, {m['cpu']}, "
        f"{m['ram_gib']} GiB RAM, Python {m['python']}, {report['database']}. "
        "Server: `dentbook serve --workers 2` (uvicorn), client on the same cores, loopback; "
        f"open-file limit (soft, raised to the hard one) {report['open_files_limit']} "
        "for the client and every server.",
        f"1-minute load at the start → end of each benchmark: {loads}.",
        "",
        "| benchmark | case | dentbook | same-run baseline | ratio | target | met |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        met = "" if r.met is None else ("yes" if r.met else "**no**")
        rat = "" if r.ratio is None else f"{r.ratio:.2f} ({r.ratio_means})"
        out.append(f"| {r.bench} | {r.case} | {r.ours} | {r.baseline} | {rat} | {r.target} | {met} |")
    out.append("")
    return "\n".join(out)
