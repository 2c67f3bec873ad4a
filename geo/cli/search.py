"""``minewatch search``: list the Sentinel-2 L2A scenes a run would use."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import click

from geo.errors import OutputError

COLUMNS = ("id", "date", "cloud_pct", "baseline", "tile")


def format_table(rows: list[dict]) -> str:
    """Fixed-width text table of scene rows."""
    heads = {"id": "id", "date": "date (UTC)", "cloud_pct": "cloud %", "baseline": "baseline", "tile": "tile"}
    cells = [[str(r[c]) for c in COLUMNS] for r in rows]
    widths = [max([len(heads[c])] + [len(row[i]) for row in cells]) for i, c in enumerate(COLUMNS)]
    line = lambda vals: "  ".join(v.ljust(w) if i != 2 else v.rjust(w) for i, (v, w) in enumerate(zip(vals, widths)))
    out = [line([heads[c] for c in COLUMNS]), "  ".join("-" * w for w in widths)]
    out += [line(row) for row in cells]
    return "\n".join(out)


@click.command("search")
@click.option("--aoi", "aoi_path", required=True, type=click.Path(), help="AOI GeoJSON (EPSG:4326 polygons).")
@click.option("--period", required=True,
              help="START/END as ISO dates, e.g. 2023-11-01/2024-04-30 (or whole months: 2023-11/2024-04).")
@click.option("--max-cloud", type=click.FloatRange(0, 100), default=80.0, show_default=True,
              help="Skip scenes with more cloud cover (%).")
@click.option("--provider", "--stac-url", "provider", default="earth-search", show_default=True,
              help="earth-search, planetary-computer, a STAC API URL, or a local ItemCollection JSON.")
@click.option("--collection", default=None, metavar="ID",
              help="STAC collection to search (default: the provider's, sentinel-2-l2a).")
@click.option("--limit", type=click.IntRange(1), default=None, help="Keep at most N scenes (least cloudy).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None,
              help="Also write the scenes as a STAC ItemCollection JSON.")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False), default=None, help="Also write the table as CSV.")
def command(aoi_path, period, max_cloud, provider, collection, limit, json_path, csv_path):
    """Search Sentinel-2 L2A scenes over AOI in PERIOD and print id, date, cloud %, baseline and tile."""
    from geo.aoi import read_aoi
    from geo.periods import parse_interval
    from geo.fsutil import atomic_path, check_distinct, check_writable, write_text
    from geo.sources.stac import scene_rows, search

    aoi = read_aoi(aoi_path)
    per = parse_interval(period)
    local = provider if provider and "://" not in str(provider) and Path(provider).is_file() else None
    check_distinct({"--json": json_path, "--csv": csv_path}, {"--aoi": aoi_path, "--stac-url": local})
    for flag, path in (("--json", json_path), ("--csv", csv_path)):
        if path:
            check_writable(path, flag)  # before the search
    items = search(aoi, per, provider=provider, max_cloud=max_cloud, limit=limit, collection=collection)
    rows = scene_rows(items)
    click.echo(format_table(rows))
    click.echo(f"{len(rows)} scene(s) over {aoi.name}, {per.start}–{per.end}, cloud <= {max_cloud:g} %", err=True)
    try:
        if json_path:
            # hrefs are unsigned (no SAS token on disk); a minewatch:signer mark lets a run on this file sign its reads
            doc = {"type": "FeatureCollection", "features": [it.to_dict(transform_hrefs=False) for it in items]}
            write_text(json_path, json.dumps(doc, indent=1))
        if csv_path:
            with atomic_path(csv_path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
                w = csv.DictWriter(f, fieldnames=[*COLUMNS, "platform"])
                w.writeheader()
                w.writerows(rows)
    except OutputError:  # atomic_path's own, already one line
        raise
    except OSError as exc:
        raise OutputError(f"cannot write {exc.filename}: {exc.strerror}; pick a writable path") from None
