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
@click.option("--seed", default=7, show_default=True, type=int, help="Simulator seed.")
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
    check = compare_with_truth(out, ds.truth_dir, labels)
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
    click.echo(f"Demo finished in {elapsed:.1f} s (simulation {t_sim:.1f} s).")
