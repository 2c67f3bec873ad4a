"""``minewatch demo``: simulate an offline Sentinel-2 archive, run the real pipeline on it, check it against truth."""

from __future__ import annotations

import time
from pathlib import Path

import click

from geo.cli.options import method_opt, weights_opt, workers_opt
from geo.cli.progress import TaskProgress
from geo.cli.run import print_summary
from geo.config import DetectConfig, RunParams, SearchConfig
from geo.fsutil import write_json
from geo.run.pipeline import RunRequest, run
from geo.sim.truth import compare_with_truth


@click.command("demo")
@click.option("--out", "out_dir", default="minewatch-demo", show_default=True, type=click.Path(file_okay=False),
              help="Run folder; the simulated archive goes to OUT/demo-data.")
@click.option("--seed", default=7, show_default=True, type=click.IntRange(0, 2**32 - 1), help="Simulator seed.")
@method_opt
@weights_opt
@workers_opt
@click.option("--sync", is_flag=True, help="Run tasks in this process instead of on Dask.")
def command(out_dir, seed, method, weights, workers, sync):
    """Run the whole pipeline on an embedded, simulated Sentinel-2 archive (no network needed)."""
    from geo.run.pipeline import check_weights
    from geo.sim.demo import write_demo_dataset

    detect = DetectConfig(method=method or DetectConfig().method,
                          weights=str(Path(weights).expanduser().absolute()) if weights else "")
    check_weights(RunParams(detect=detect))  # before minutes of simulation: bad weights fail at once (exit 5)
    t0 = time.perf_counter()
    out = Path(out_dir)
    _check_out(out, seed)
    click.echo(f"Simulating Sentinel-2 L2A scenes (seed {seed}) into {out / 'demo-data'} …", err=True)
    ds = write_demo_dataset(out / "demo-data", seed=seed)
    t_sim = time.perf_counter() - t0
    params = RunParams(search=SearchConfig(provider=str(ds.items_path), max_cloud=100.0),
                       detect=detect)
    req = RunRequest(ds.aoi_path, tuple(ds.periods), out, params, executor="sync" if sync else "dask", workers=workers)
    bar = TaskProgress("demo tasks")
    try:
        result = run(req, progress=bar)
    finally:
        bar.close()
    labels = [p.label for p in ds.periods]
    _mark_simulated(out)
    est = _estimate_loop(out, ds.truth_dir, seed)
    check = compare_with_truth(out, ds.truth_dir, labels)
    check["estimate"] = est
    write_json(out / "demo_check.json", check)
    elapsed = time.perf_counter() - t0
    print_summary(result)
    fp, sc = check["footprint_area_m2"], check["site_count"]
    last = check["iou"][labels[-1]]
    click.echo(f"Truth check ({labels[0]} → {labels[-1]}): footprint growth measured {fp['measured_growth_pct']:+.1f} % "
               f"vs truth {fp['truth_growth_pct']:+.1f} % ({fp['error_pp']:+.1f} pp); sites measured "
               f"{sc['measured_growth_pct']:+.1f} % vs truth {sc['truth_growth_pct']:+.1f} %")
    click.echo(f"IoU {labels[-1]}: ponds {last['leaching_pond']:.3f}, cleared land {last['cleared_land']:.3f} "
               f"(details in {out / 'demo_check.json'})")
    click.echo("Good-practice estimate (stratified sample labelled by the simulator's truth, standing in for an "
               f"analyst; {out / 'estimate.csv'}): footprint truth inside the 95 % interval in "
               f"{sum(e['truth_inside'] for e in est.values())} of {len(est)} seasons")
    click.echo("The imagery is SIMULATED: report and manifest say so, and no published claim is judged.")
    click.echo(f"Demo finished in {elapsed:.1f} s (simulation {t_sim:.1f} s).")


def _check_out(out: Path, seed: int) -> None:
    """Refuse, before anything is simulated, an ``--out`` holding a run the demo would break: another demo seed (its
    archive would be replaced under its results) or a run of the user's own.

    Raises:
        UsageError: naming what the folder holds and the way out.
    """
    import json

    from geo.errors import UsageError

    if not (out / "manifest.json").is_file():
        if out.is_dir() and not (out / "demo-data").exists() and any(out.iterdir()):
            raise UsageError(f"{out} already holds files and no minewatch demo; give a new or empty --out folder "
                             "(the demo writes a run folder and its archive there)")
        return
    try:
        man = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
        aoi = Path(str((man.get("inputs") or {}).get("aoi_path", "")))
    except (OSError, ValueError, AttributeError):
        return  # the run itself judges an unreadable manifest
    if aoi.resolve() != (out / "demo-data" / "aoi.geojson").resolve():
        raise UsageError(f"{out} holds a run of another AOI ({aoi}), not a demo; choose another --out for the demo")
    try:
        old = json.loads((out / "demo-data" / "demo.json").read_text(encoding="utf-8")).get("seed")
    except (OSError, ValueError, AttributeError):
        return
    if old is not None and old != seed:
        raise UsageError(f"{out} holds the demo of seed {old}; a demo of seed {seed} would replace its imagery under "
                         f"its results: rerun with --seed {old}, or choose another --out")


def _mark_simulated(out: Path) -> None:
    """The demo's manifest says ``"simulated": true`` (the pipeline sets it from the items; this makes sure)."""
    import json

    man = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    if man.get("simulated") is not True:
        man["simulated"] = True
        write_json(out / "manifest.json", man)


def _estimate_loop(out: Path, truth_dir: Path, seed: int) -> dict:
    """sample → label from truth → estimate → report, as an analyst would with real labels; truth check per season."""
    import pandas as pd

    from geo.results.sampling import draw_run_sample, estimate_run, write_sample
    from geo.run.recompute import recompute
    from geo.sim.truth import label_from_truth

    sample = write_sample(draw_run_sample(out, 300, seed=seed), out / "sample.gpkg")
    label_from_truth(sample, truth_dir)
    est = estimate_run(out, sample)
    recompute(out)
    truth = pd.read_csv(truth_dir / "summary.csv").set_index("period")
    res = {}
    for _, r in est[est["class"] == "footprint"].iterrows():
        t = float(truth.loc[r["period"], "footprint_area_m2"])
        res[r["period"]] = {"area_m2": r["area_m2"], "low": r["area_m2_low"], "high": r["area_m2_high"],
                            "truth_m2": t, "truth_inside": bool(r["area_m2_low"] <= t <= r["area_m2_high"])}
    return res
