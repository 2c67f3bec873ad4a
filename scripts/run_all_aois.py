#!/usr/bin/env python3
"""Run ``minewatch run`` for every AOI in a folder (or a given list) over a range of dry seasons.

NGO batch entry point: one command, resumable (each AOI has its own run folder; rerunning skips finished
work), continues past a failing AOI, logs each AOI to ``<out>/<aoi>/run.log``, and collects every
summary into ``<out>/batch_summary.csv`` plus a status table ``<out>/batch_status.csv``.

Examples::

    python scripts/run_all_aois.py --start 2019 --end 2024 --out runs/
    python scripts/run_all_aois.py --aoi aoi/momauk.geojson --start 2021 --end 2023 --out runs/ -- --max-cloud 60

Arguments after ``--`` are passed to ``minewatch run`` unchanged. Exit code: 0 when every AOI succeeded,
1 when at least one failed (the others still ran).
"""

from __future__ import annotations

import argparse
import csv
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def minewatch_cmd() -> list[str]:
    exe = shutil.which("minewatch")
    return [exe] if exe else [sys.executable, "-m", "geo"]


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra: list[str] = []
    if "--" in argv:
        i = argv.index("--")
        argv, extra = argv[:i], argv[i + 1 :]
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        usage="%(prog)s [--aoi FILE ...] --start YEAR --end YEAR --out DIR [-- <minewatch run flags>]",
        epilog="Arguments after -- are passed to 'minewatch run' unchanged, e.g. "
               "'-- --max-cloud 60 --stac-url planetary-computer'. Exit code 0 when every AOI succeeded, "
               "1 when at least one failed (the others still ran).")
    ap.add_argument("--aoi", action="append", type=Path, help="AOI file (repeatable). Default: every aoi/*.geojson")
    ap.add_argument("--aoi-dir", type=Path, default=REPO / "aoi", help="folder of AOI GeoJSON files")
    ap.add_argument("--start", type=int, required=True, help="first dry season (year it begins)")
    ap.add_argument("--end", type=int, required=True, help="last dry season (year it begins)")
    ap.add_argument("--out", type=Path, required=True, help="batch folder; one run folder per AOI inside")
    args = ap.parse_args(argv)
    aois = args.aoi or sorted(args.aoi_dir.glob("*.geojson"))
    if not aois:
        print(f"Error: no AOI files given and none in {args.aoi_dir}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    status_rows, summary_rows = [], []
    for n, aoi in enumerate(aois, start=1):
        run_dir = args.out / aoi.stem
        run_dir.mkdir(parents=True, exist_ok=True)
        cmd = minewatch_cmd() + ["run", "--aoi", str(aoi), "--start", str(args.start), "--end", str(args.end),
                                 "--out", str(run_dir)] + extra
        print(f"[{n}/{len(aois)}] {aoi.name} → {run_dir}", file=sys.stderr, flush=True)
        t0 = time.time()
        with open(run_dir / "run.log", "a", encoding="utf-8") as log:
            log.write(f"$ {' '.join(cmd)}\n")
            log.flush()
            rc = subprocess.call(cmd, stdout=log, stderr=subprocess.STDOUT)
        secs = time.time() - t0
        last_line = ""
        lines = (run_dir / "run.log").read_text(encoding="utf-8", errors="replace").strip().splitlines()
        errors = [ln for ln in lines if ln.startswith("Error:")]
        last_line = errors[-1] if errors else (lines[-1] if lines else "")
        status_rows.append({"aoi": aoi.stem, "exit_code": rc, "seconds": round(secs, 1),
                            "status": "ok" if rc == 0 else "failed", "message": last_line if rc else ""})
        outcome = f"ok after {secs:.0f} s" if rc == 0 else f"FAILED (exit {rc}) after {secs:.0f} s: {last_line}"
        print(f"    {outcome}", file=sys.stderr, flush=True)
        summary = run_dir / "summary.csv"
        if rc == 0 and summary.exists():
            with open(summary, newline="", encoding="utf-8") as f:
                for row in csv.DictReader(f):
                    summary_rows.append({"aoi": aoi.stem, **row})
    with open(args.out / "batch_status.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=["aoi", "status", "exit_code", "seconds", "message"])
        w.writeheader()
        w.writerows(status_rows)
    tables = [args.out / "batch_status.csv"]
    if summary_rows:
        tables.append(args.out / "batch_summary.csv")
        fields = list(summary_rows[0].keys())
        with open(args.out / "batch_summary.csv", "w", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, fieldnames=fields)
            w.writeheader()
            w.writerows(summary_rows)
    failed = [r["aoi"] for r in status_rows if r["status"] != "ok"]
    print(f"{len(aois) - len(failed)}/{len(aois)} AOIs succeeded; tables: {', '.join(map(str, tables))}"
          + (f"; failed: {', '.join(failed)}" if failed else ""), file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
