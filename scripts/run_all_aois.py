#!/usr/bin/env python3
"""Run ``minewatch run`` for every AOI in a folder (or a given list) over a range of dry seasons.

NGO batch entry point: one command, resumable (each AOI has its own run folder; rerunning skips finished
work), continues past a failing AOI, logs each AOI to ``<out>/<aoi>/run.log``, and collects every
summary into ``<out>/batch_summary.csv`` plus a status table ``<out>/batch_status.csv``.

Examples::

    python scripts/run_all_aois.py --start 2019 --end 2024 --out runs/
    python scripts/run_all_aois.py --aoi aoi/momauk.geojson --start 2021 --end 2023 --out runs/ -- --max-cloud 60

Arguments after ``--`` are passed to ``minewatch run`` unchanged. Exit code: 0 when every AOI succeeded,
1 when at least one failed (the others still ran), 2 for a bad batch (end before start, an AOI file missing, two AOIs
with the same file name, which would share a run folder), 7 when the batch folder cannot be written, 130 when
interrupted (Ctrl-C: the tables are written for the AOIs finished so far; rerun to resume).
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
               "1 when at least one failed (the others still ran), 2 for a bad batch, 7 when --out cannot be written, "
               "130 when interrupted.")
    ap.add_argument("--aoi", action="append", type=Path, help="AOI file (repeatable). Default: every aoi/*.geojson")
    ap.add_argument("--aoi-dir", type=Path, default=REPO / "aoi", help="folder of AOI GeoJSON files")
    ap.add_argument("--start", type=int, required=True, help="first dry season (year it begins)")
    ap.add_argument("--end", type=int, required=True, help="last dry season (year it begins)")
    ap.add_argument("--out", type=Path, required=True, help="batch folder; one run folder per AOI inside")
    args = ap.parse_args(argv)
    aois = list({a.resolve(): a for a in (args.aoi or sorted(args.aoi_dir.glob("*.geojson")))}.values())  # once each
    problem = _check_batch(aois, args)
    if problem:
        print(f"Error: {problem}", file=sys.stderr)
        return 2
    try:
        args.out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        print(f"Error: cannot write the batch folder {args.out} ({exc.strerror or exc}); choose a writable --out",
              file=sys.stderr)
        return 7
    status_rows, summary_rows = [], []
    try:
        _run_all(aois, args, extra, status_rows, summary_rows)
    except KeyboardInterrupt:
        _write_tables(args.out, status_rows, summary_rows)
        done = sum(r["status"] != "interrupted" for r in status_rows)
        print(f"Interrupted after {done} of {len(aois)} AOI(s); tables: {args.out / 'batch_status.csv'}; rerun the same "
              "command to resume (finished work is kept)", file=sys.stderr)
        return 130
    tables = _write_tables(args.out, status_rows, summary_rows)
    failed = [r["aoi"] for r in status_rows if r["status"] != "ok"]
    print(f"{len(aois) - len(failed)}/{len(aois)} AOIs succeeded; tables: {', '.join(map(str, tables))}"
          + (f"; failed: {', '.join(failed)}" if failed else ""), file=sys.stderr)
    return 1 if failed else 0


def _check_batch(aois: list[Path], args) -> str | None:
    """What is wrong with the batch as a whole (checked before any AOI runs), or None."""
    if not aois:
        return f"no AOI files given and none in {args.aoi_dir}"
    if args.end < args.start:
        return (f"end year {args.end} is before start year {args.start}; seasons are named by the year they begin, "
                "e.g. --start 2019 --end 2024")
    missing = [str(a) for a in aois if not a.is_file()]
    if missing:
        return f"AOI file(s) not found: {', '.join(missing)}"
    stems: dict[str, Path] = {}
    for a in aois:
        if a.stem in stems and stems[a.stem].resolve() != a.resolve():
            return (f"{stems[a.stem]} and {a} would share the run folder {args.out / a.stem}; rename one of them")
        stems[a.stem] = a
    return None


def _refused(run_dir: Path) -> str:
    """The one-line refusal when ``run_dir`` holds the user's own files and no run (as ``minewatch run`` refuses
    it), else ""."""
    from geo.errors import UsageError
    from geo.run.runfolder import check_run_out

    try:
        check_run_out(run_dir)
    except UsageError as exc:
        return f"Error: {exc}"
    return ""


def _run_all(aois: list[Path], args, extra: list[str], status_rows: list, summary_rows: list) -> None:
    from geo.results.run_inputs import model_checks_of

    for n, aoi in enumerate(aois, start=1):
        run_dir = args.out / aoi.stem
        print(f"[{n}/{len(aois)}] {aoi.name} → {run_dir}", file=sys.stderr, flush=True)
        refused = _refused(run_dir)
        if refused:  # the user's own folder: write no run.log into it, say so and go on
            status_rows.append({"aoi": aoi.stem, "exit_code": 2, "seconds": 0.0, "status": "failed",
                                "message": refused})
            print(f"    FAILED (exit 2): {refused}", file=sys.stderr, flush=True)
            continue
        run_dir.mkdir(parents=True, exist_ok=True)
        cmd = minewatch_cmd() + ["run", "--aoi", str(aoi), "--start", str(args.start), "--end", str(args.end),
                                 "--out", str(run_dir)] + extra
        t0 = time.time()
        with open(run_dir / "run.log", "a", encoding="utf-8") as log:
            log.write(f"$ {' '.join(cmd)}\n")
            log.flush()
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
            try:
                rc = proc.wait()
            except KeyboardInterrupt:  # the run got the same Ctrl-C: let it record its state and stop
                try:
                    proc.wait(timeout=60)
                except (subprocess.TimeoutExpired, KeyboardInterrupt):
                    proc.kill()
                    proc.wait()
                status_rows.append({"aoi": aoi.stem, "exit_code": proc.returncode, "seconds": round(time.time() - t0, 1),
                                    "status": "interrupted", "message": "interrupted; rerun to resume"})
                raise
        secs = time.time() - t0
        last_line = ""
        lines = (run_dir / "run.log").read_text(encoding="utf-8", errors="replace").strip().splitlines()
        errors = [ln for ln in lines if ln.startswith("Error:")]
        last_line = errors[-1] if errors else (lines[-1] if lines else "")
        summary, rows = run_dir / "summary.csv", []
        if rc == 0 and summary.exists():
            with open(summary, newline="", encoding="utf-8") as f:
                rows = [{"aoi": aoi.stem, **row} for row in csv.DictReader(f)]
        summary_rows += rows
        unsure = [r["period"] for r in rows if r.get("model_doubtful") == "True"]  # docs/MODEL_CHECKS.md
        notes = [f"MODEL UNSURE in {', '.join(unsure)}"] if unsure else []
        disagree = [p for p, c in model_checks_of(run_dir).items() if isinstance(c, dict) and c.get("rules_disagree")]
        notes += [f"RULES DISAGREE in {', '.join(disagree)}"] if rc == 0 and disagree else []
        note = "; ".join(notes) + ": see the run's report" if notes else ""
        status_rows.append({"aoi": aoi.stem, "exit_code": rc, "seconds": round(secs, 1),
                            "status": "ok" if rc == 0 else "failed", "message": last_line if rc else note})
        outcome = f"ok after {secs:.0f} s" if rc == 0 else f"FAILED (exit {rc}) after {secs:.0f} s: {last_line}"
        print(f"    {outcome}" + (f" ({note})" if note else ""), file=sys.stderr, flush=True)


def _write_tables(out: Path, status_rows: list, summary_rows: list) -> list[Path]:
    """``batch_status.csv`` and, when any AOI produced a summary, ``batch_summary.csv``; returns their paths."""
    tables = [out / "batch_status.csv"]
    with open(tables[0], "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=["aoi", "status", "exit_code", "seconds", "message"])
        w.writeheader()
        w.writerows(status_rows)
    if summary_rows:
        tables.append(out / "batch_summary.csv")
        with open(tables[1], "w", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, fieldnames=list(summary_rows[0].keys()))
            w.writeheader()
            w.writerows(summary_rows)
    return tables


if __name__ == "__main__":
    sys.exit(main())
