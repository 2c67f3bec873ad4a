"""``minewatch detect``: footprints (cleared land, leaching ponds) from one Sentinel-2 GeoTIFF."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import click
import numpy as np

from geo.errors import CrsError, NoDataError, UsageError

log = logging.getLogger(__name__)


def _area_in_utm(gdf):
    """Recompute ``area_m2`` in the local UTM zone when the grid's CRS is projected but not UTM."""
    epsg = gdf.crs.to_epsg() if gdf.crs is not None else None
    if epsg is not None and (32601 <= epsg <= 32660 or 32701 <= epsg <= 32760):
        return gdf
    if len(gdf):
        gdf = gdf.copy()
        gdf["area_m2"] = gdf.geometry.to_crs(gdf.estimate_utm_crs()).area.astype(np.float64)
    return gdf


def detect_image(image: Path, *, method: str = "rules", offset: float | None = None, device: str = "auto",
                 weights: str | None = None, min_area_m2: float = 0.0, views: int = 1,
                 band_names: tuple[str, ...] | None = None):
    """Read IMAGE, classify it and return ``(Detection, footprints GeoDataFrame in the image CRS, valid)``, where
    ``valid`` marks the pixels with data in every band."""
    from geo.stages.detect import FusionConfig, RuleThresholds, classify
    from geo.stack import Composite
    from geo.stages.vectorize import polygonize
    from geo.sources.geotiff import check_plausible_reflectance, read_geotiff

    scene = read_geotiff(image, offset=offset, band_names=band_names)
    if not scene.grid.crs.is_projected:
        raise CrsError(f"{image} is in {scene.grid.crs}, not a projected CRS; areas need metres — "
                       "reproject it to its UTM zone first (gdalwarp -t_srs EPSG:326NN)")
    res = (abs(scene.grid.transform.a), abs(scene.grid.transform.e))
    if max(abs(r - 10.0) for r in res) > 0.5:
        log.warning("%s has %g x %g m pixels; the detector is made for Sentinel-2's 10 m pixels, so its footprints "
                    "and above all its ponds are less reliable here: export the composite at 10 m "
                    "(gdalwarp -tr 10 10) where you can", image, *res)
    rules = RuleThresholds()
    valid = np.all(np.isfinite(scene.data), axis=0)
    if not valid.any():
        raise NoDataError(f"{image} has no valid pixel (every pixel is nodata, DN 0 or the nodata value, in some "
                          "band); check its nodata value and that it holds L2A digital numbers, or export it again")
    check_plausible_reflectance(scene.data, image)
    # one image (or an already-made composite): count every valid pixel as fully observed
    clear = np.where(valid, rules.full_confidence_clear_count, 0).astype(np.uint16)
    comp = Composite(scene.data, clear, scene.bands, scene.grid)
    config = rules if method == "rules" else FusionConfig(rules=rules, device=device, weights=weights, views=views)
    det = classify(comp, method=method, config=config)
    gdf = polygonize(det.classes, det.grid, confidence=det.confidence, min_area_m2=min_area_m2)
    return det, _area_in_utm(gdf), valid


@click.command("detect")
@click.argument("image", type=click.Path(exists=True, dir_okay=False))
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False),
              help="Footprint polygons: .geojson (EPSG:4326) or .gpkg (image CRS).")
@click.option("--raster", "raster_path", type=click.Path(dir_okay=False), default=None,
              help="Also write the class map (band 1: 0/1/2) and confidence (band 2, 0-100) as GeoTIFF; "
                   "255 (its nodata) where the image has no data.")
@click.option("--method", type=click.Choice(["rules", "model", "fused"]), default="fused", show_default=True,
              help="Spectral rules, the U-Net, or both fused.")
@click.option("--offset", type=float, default=None,
              help="DN offset added before /10000 (-1000 for L2A baseline >= 04.00). Default: the image's "
                   "'offset' tag, else 0.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True,
              help="Where the U-Net runs.")
@click.option("--weights", type=click.Path(dir_okay=False), default=None,
              help="Weights file (its .json card next to it). Default: the shipped model.")
@click.option("--min-area-m2", type=click.FloatRange(0), default=0.0, show_default=True,
              help="Drop polygons smaller than this.")
@click.option("--views", type=click.Choice(["1", "2", "4"]), default="1", show_default=True,
              help="Flipped copies the U-Net's probabilities are averaged over (test-time augmentation; 4 takes 4x "
                   "the model's time; see the model card for what it changed).")
@click.option("--bands", "band_list", default=None, metavar="B02,B03,...",
              help="Names of the image's bands, in order, when its band descriptions do not name them (a stack "
                   "merged with gdal_merge or QGIS). Default: the band descriptions.")
def command(image, out_path, raster_path, method, offset, device, weights, min_area_m2, views, band_list):
    """Find cleared land and leaching ponds in IMAGE.

    IMAGE is a GeoTIFF whose band descriptions (or --bands) name Sentinel-2 bands (at least B02 B03 B04 B08 B11
    B12; others are ignored) holding L2A DN (reflectance x 10000), floating-point reflectance 0-1, or
    values with GDAL scale/offset metadata (each recognised; the log says which). Polygons get class,
    class_name, area_m2 (computed in UTM) and confidence_pct (mean, 0-100). A .gpkg holds its QGIS style.
    """
    from geo.results.export import write_geojson, write_gpkg, write_raster
    from geo.results.layers import confidence_pct
    from geo.stages.vectorize import class_areas

    suffix = Path(out_path).suffix.lower()
    if suffix not in (".geojson", ".json", ".gpkg"):
        raise UsageError(f"--out must end in .geojson or .gpkg, got '{suffix or out_path}'")
    for flag, path in (("--raster", raster_path), ("--out", out_path)):
        if path is not None and (Path(path).resolve() == Path(image).resolve()
                                 or Path(path).exists() and os.path.samefile(path, image)):  # links too
            raise UsageError(f"{flag} {path} is the input image; it would be overwritten: write to another file")
    other_formats = (".gpkg", ".geojson", ".json", ".shp", ".csv", ".png", ".jpg", ".jpeg", ".jp2", ".vrt", ".nc")
    if raster_path is not None and Path(raster_path).suffix.lower() in other_formats:
        raise UsageError(f"--raster writes a GeoTIFF: give it a .tif path, got '{Path(raster_path).suffix or raster_path}'")
    from geo.fsutil import check_distinct, check_writable

    check_distinct({"--out": out_path, "--raster": raster_path}, {"IMAGE": image, "--weights": weights})
    for flag, path in (("--out", out_path), ("--raster", raster_path)):
        if path is not None:
            check_writable(path, flag)  # before minutes of detection
    names = tuple(b.strip() for b in band_list.split(",")) if band_list is not None else None
    if names is not None and not all(names):
        raise UsageError(f"--bands must list band names separated by commas, e.g. B02,B03,B04,B08,B11,B12; got "
                         f"'{band_list}'")
    det, gdf, valid = detect_image(Path(image), method=method, offset=offset, device=device, weights=weights,
                            min_area_m2=min_area_m2, views=int(views), band_names=names)
    if suffix == ".gpkg":
        from geo.results.styles import default_styles

        gdf = confidence_pct(gdf)
        write_gpkg({"footprints": gdf}, out_path, styles=default_styles(["footprints"], temporal=False))
    else:
        write_geojson(confidence_pct(gdf), out_path)
    if raster_path:
        from geo.stages.vectorize import NOT_OBSERVED

        # pixels without data are 'not observed' (255, the file's nodata), as in a run's class maps, not background
        conf = np.round(det.confidence * 100).astype(np.uint8)
        classes = np.where(valid, det.classes, NOT_OBSERVED).astype(np.uint8)
        conf = np.where(valid, conf, NOT_OBSERVED).astype(np.uint8)
        write_raster(np.stack([classes, conf]), det.grid, raster_path, nodata=NOT_OBSERVED,
                     descriptions=("class", "confidence_pct"))
    areas = class_areas(gdf)
    click.echo(f"{len(gdf)} footprint polygon(s) -> {out_path}")
    for name, area in areas.items():
        click.echo(f"  {name:<15} {area / 1e4:10.2f} ha")
