"""``minewatch run``: the whole job for one AOI over a range of dry seasons."""

from __future__ import annotations

from pathlib import Path

import click
from tqdm.contrib.logging import logging_redirect_tqdm

from geo.cli.options import (build_params, check_scheduler, collection_opt, config_opt, max_cloud_opt, method_opt,
                             scheduler_opt, tile_opt, weights_opt, workers_opt)
from geo.cli.progress import TaskProgress
from geo.periods import dry_seasons
from geo.run.pipeline import RunRequest, run


def print_summary(result, echo=click.echo) -> None:
    import pandas as pd

    from geo.results.change import headline_caveats
    from geo.results.run_inputs import model_checks_of

    df = pd.read_csv(result.summary_csv)
    checks = model_checks_of(result.out_dir)
    echo(f"Outputs in {result.out_dir}")
    echo(f"  summary   {result.summary_csv}")
    echo(f"  report    {result.report_html}")
    echo(f"  vectors   {result.out_dir / 'footprints.gpkg'}")
    for _, r in df.iterrows():
        flag = "  (low clear coverage)" if r["low_confidence"] else ""
        if str(r.get("model_doubtful", False)) == "True":  # docs/MODEL_CHECKS.md
            flag += f"  (MODEL UNSURE: {100 * r['model_uncertain_share']:.1f} % of its candidates below p 0.5)"
        c = checks.get(r["period"])
        drop = c.get("rules_dropped_m2") if isinstance(c, dict) and c.get("rules_disagree") is True else None
        if isinstance(drop, (int, float)) and not isinstance(drop, bool):
            flag += f"  (RULES DISAGREE: the fused map left out {drop / 1e4:.1f} ha the rules find)"
        if pd.isna(r["footprint_area_m2"]):
            echo(f"  {r['period']}: NO DATA (no scenes): no area, no sites, no growth from or to it")
            continue
        echo(f"  {r['period']}: footprint {r['footprint_area_m2'] / 1e6:7.3f} km²  ponds {r['pond_area_m2'] / 1e6:6.3f} km²"
             f"  sites {int(r['site_count']):3d}  clear {r['clear_fraction']:.2f}{flag}")
    if len(df) > 1:
        first, last = df.iloc[0], df.iloc[-1]

        def pct(col: str, of: str, base: str) -> str:  # growth from nothing is no number: say why, not "+nan %"
            v = last[col]
            if pd.notna(v):
                return f"{v:+.1f} %"
            why = (f"no {base} in {first['period']}" if first[of] == 0 else
                   f"no data in {' or '.join(r['period'] for r in (first, last) if pd.isna(r[of]))}")
            return f"not defined ({why})"

        caveats = headline_caveats(df, (first["period"], last["period"]))
        echo(f"Growth {first['period']} → {last['period']}: footprint "
             f"{pct('footprint_growth_pct', 'footprint_area_m2', 'footprint')}, "
             f"sites {pct('site_count_growth_pct', 'site_count', 'site')}"
             + "".join(f" — {c}" for c in caveats))
    print_claims(result.out_dir, echo)


def print_claims(out_dir, echo=click.echo) -> None:
    """One line per published claim of ``claims.csv``: its verdict with the measured growth, or why it is not
    comparable. Nothing when the file is missing or unreadable."""
    import pandas as pd

    try:
        claims = pd.read_csv(Path(out_dir) / "claims.csv")
        rows = [(str(c["publisher"]), str(c["claim"]), str(c["claim_period"]), str(c["verdict"]), c["reason"],
                 c["measured_growth_pct"], c["measured_low"], c["measured_high"]) for _, c in claims.iterrows()]
    except (OSError, ValueError, KeyError, pd.errors.ParserError, pd.errors.EmptyDataError):
        return
    if rows:
        echo("Claims (claims.csv; a verdict needs a map checked with 'minewatch sample' + 'minewatch estimate'):")
    for pub, claim, period, verdict, reason, g, lo, hi in rows:
        if verdict == "not comparable":
            echo(f"  {pub} {claim} ({period}): not comparable: {reason if isinstance(reason, str) else '?'}")
        else:
            echo(f"  {pub} {claim} ({period}): {verdict}: measured {g:+.1f} % [{lo:+.1f} … {hi:+.1f} %]")


@click.command("run")
@click.option("--aoi", "aoi_path", required=True, type=click.Path(), help="AOI GeoJSON (EPSG:4326 polygons).")
@click.option("--start", "start", required=True, type=int, help="First dry season, by the year it begins (2019 = Nov 2019–Apr 2020).")
@click.option("--end", "end", required=True, type=int, help="Last dry season, by the year it begins.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Run folder (reruns resume).")
@click.option("--stac-url", "--provider", "provider", default=None,
              help="earth-search (default), planetary-computer, a STAC API URL, or a local ItemCollection JSON.")
@collection_opt
@max_cloud_opt
@method_opt
@weights_opt
@workers_opt
@scheduler_opt
@tile_opt
@config_opt
@click.option("--sync", is_flag=True, help="Run tasks in this process instead of on Dask.")
@click.option("--cache-dir", type=click.Path(file_okay=False), default=None,
              help="Keep fetched windows (deflated DN) in this folder (on the machine running each task) so reruns "
                   "read nothing again. Off by default.")
@click.option("--cache-max-gb", type=click.FloatRange(0.01, None), default=5.0, show_default=True,
              help="Size cap of --cache-dir; least recently used entries go first.")
def command(aoi_path, start, end, out_dir, provider, collection, max_cloud, method, weights, workers, scheduler, tile_px,
            config_path, sync, cache_dir, cache_max_gb):
    """Measure mining footprints in AOI for each dry season from START to END."""
    if not out_dir.strip():  # --out "$UNSET" would write the run into (and prune tasks/ of) the current folder
        from geo.errors import UsageError

        raise UsageError("--out is empty; give the run folder, e.g. --out runs/chipwi")
    from geo.run.runfolder import check_run_out

    check_run_out(Path(out_dir))
    periods = tuple(dry_seasons(start, end))
    check_scheduler(None if sync else scheduler)
    if cache_dir and (sync or not scheduler):  # tasks run on this machine: its --cache-dir must be writable here
        from geo.fsutil import check_writable

        check_writable(cache_dir, "--cache-dir", folder=True)
    params = build_params(config_path, provider=provider, max_cloud=max_cloud, method=method, tile_px=tile_px,
                          weights=weights, collection=collection)
    req = RunRequest(Path(aoi_path), periods, Path(out_dir), params, executor="sync" if sync else "dask",
                     workers=workers, scheduler=scheduler, cache_dir=Path(cache_dir).resolve() if cache_dir else None,
                     cache_max_bytes=int(cache_max_gb * 1e9))
    bar = TaskProgress()
    try:
        with logging_redirect_tqdm():  # log lines (progress every few seconds) print above the bar
            result = run(req, progress=bar)
    finally:
        bar.close()
    print_summary(result)
