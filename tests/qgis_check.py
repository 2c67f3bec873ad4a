"""Open minewatch outputs in real QGIS and report what QGIS sees, as JSON on stdout.

Run with the *system* Python that has Debian's ``python3-qgis`` (not the project venv), headless::

    QT_QPA_PLATFORM=offscreen /usr/bin/python3 tests/qgis_check.py EXPECT.json

``EXPECT.json`` holds::

    {"gpkg": "/run/footprints.gpkg",
     "gpkg_layers": {"footprints_2022-23": {"crs": "EPSG:32647", "count": 8, "area_m2": 65500.0,
                      "style": {"renderer": "categorizedSymbol", "attr": "class_name",
                                "categories": ["leaching_pond", "cleared_land"]}}, ...},
     "geojson": {"/run/footprints_2022-23.geojson": {"crs": "EPSG:4326", "count": 8, "area_m2": 65500.0,
                  "area_crs": "EPSG:32647"}, ...},
     "render_layers": ["footprints_2022-23", "change"],
     "png": "/run/qgis_render.png",
     "area_rtol": 0.005}

For every layer the script measures validity, CRS, feature count, invalid geometries, total area (planar in the
layer CRS, or after transforming to ``area_crs``; ellipsoidal WGS84 area as well), the renderer QGIS applied on
load (from the GeoPackage ``layer_styles`` table) and its categories; then it renders ``render_layers`` to ``png``
and counts the non-background pixels and the pixels of each
category's style colour (layers listed bottom first). It prints ``{"ok": bool, "errors": [...], ...measurements}`` and exits 0
(even when checks fail: the caller asserts on ``errors``); exit 2 means it could not run at all.
"""

from __future__ import annotations

import json
import os
import sys
import time


def _layer_report(layer, spec: dict, QgsDistanceArea, QgsCoordinateTransform, QgsCoordinateReferenceSystem,
                  project) -> tuple[dict, list[str]]:
    name = layer.name()
    errors: list[str] = []
    rep = {"valid": layer.isValid()}
    if not layer.isValid():
        return rep, [f"{name}: QGIS could not open the layer"]
    rep["crs"] = layer.crs().authid()
    rep["count"] = layer.featureCount()
    rep["geometry_type"] = layer.geometryType()
    da = QgsDistanceArea()
    da.setSourceCrs(layer.crs(), project.transformContext())
    da.setEllipsoid("WGS84")
    xform = None
    if spec.get("area_crs"):
        xform = QgsCoordinateTransform(layer.crs(), QgsCoordinateReferenceSystem(spec["area_crs"]), project)
    area = area_ell = 0.0
    invalid = empty = 0
    for f in layer.getFeatures():
        g = f.geometry()
        if g.isNull() or g.isEmpty():
            empty += 1
            continue
        if not g.isGeosValid():
            invalid += 1
        area_ell += da.measureArea(g)
        if xform is not None:
            g = type(g)(g)
            g.transform(xform)
        area += g.area()
    rep.update(area_m2=area, area_ellipsoidal_m2=area_ell, invalid=invalid, empty=empty)
    if invalid or empty:
        errors.append(f"{name}: {invalid} invalid and {empty} empty geometries")
    if "crs" in spec and rep["crs"] != spec["crs"]:
        errors.append(f"{name}: CRS {rep['crs']} != expected {spec['crs']}")
    if "count" in spec and rep["count"] != spec["count"]:
        errors.append(f"{name}: {rep['count']} features != expected {spec['count']}")
    if "area_m2" in spec:
        rtol = spec.get("area_rtol", 0.005)
        for key in ("area_m2", "area_ellipsoidal_m2"):
            tol = rtol if key == "area_m2" else max(rtol, 0.01)
            if abs(rep[key] - spec["area_m2"]) > tol * max(spec["area_m2"], 1.0):
                errors.append(f"{name}: {key} {rep[key]:.1f} differs from expected {spec['area_m2']:.1f} by more than {tol:.1%}")
    rep["field_types"] = {f.name(): f.typeName() for f in layer.fields()}
    tp = layer.temporalProperties()
    rep["temporal"] = {"active": tp.isActive(), "mode": int(tp.mode()), "start_field": tp.startField(),
                       "end_field": tp.endField()}
    rep["labels_enabled"] = layer.labelsEnabled()
    lab = layer.labeling()
    rep["label_expression"] = lab.settings().fieldName if lab is not None and hasattr(lab, "settings") else None
    if spec.get("temporal"):
        t = rep["temporal"]
        if not t["active"] or t["start_field"] != "period_start" or t["end_field"] != "period_end":
            errors.append(f"{name}: temporal properties not set from period_start/period_end ({t})")
        for fld in ("period_start", "period_end"):
            if rep["field_types"].get(fld, "").lower() != "date":
                errors.append(f"{name}: field {fld} is {rep['field_types'].get(fld)!r}, not a Date")
    if spec.get("labels") and not (rep["labels_enabled"] and spec["labels"] in (rep["label_expression"] or "")):
        errors.append(f"{name}: labels not enabled on {spec['labels']!r} ({rep['label_expression']!r})")
    r = layer.renderer()
    rep["renderer"] = r.type() if r else None
    if r is not None and r.type() == "categorizedSymbol":
        rep["style_attr"] = r.classAttribute()
        rep["categories"] = [{"value": c.value(), "label": c.label(), "color": c.symbol().color().name()}
                             for c in r.categories()]
    style = spec.get("style")
    if style:
        if rep["renderer"] != style["renderer"]:
            errors.append(f"{name}: QGIS applied renderer {rep['renderer']!r}, not the embedded {style['renderer']!r} "
                          "(layer_styles default style not picked up)")
        elif style["renderer"] == "categorizedSymbol":
            if rep["style_attr"] != style["attr"]:
                errors.append(f"{name}: style classifies on {rep['style_attr']!r}, expected {style['attr']!r}")
            values = {c["value"] for c in rep["categories"]}
            missing = sorted(set(style["categories"]) - values)
            if missing:
                errors.append(f"{name}: style lacks categories {missing}")
            idx = layer.fields().indexOf(style["attr"])
            if idx < 0:
                errors.append(f"{name}: styled attribute {style['attr']!r} is not a field of the layer")
            else:
                uncovered = sorted({str(v) for v in layer.uniqueValues(idx)} - {str(v) for v in values})
                if uncovered:
                    errors.append(f"{name}: feature values {uncovered} have no style category (would not render)")
    return rep, errors


def _raster_report(path: str, spec: dict) -> tuple[dict, list[str]]:
    """How QGIS opens a class raster: renderer (with its default style), nodata, class labels and colours."""
    from qgis.core import QgsRasterLayer

    layer = QgsRasterLayer(path, path.rsplit("/", 1)[-1])
    rep: dict = {"valid": layer.isValid()}
    if not layer.isValid():
        return rep, [f"{path}: QGIS could not open the raster"]
    dp = layer.dataProvider()
    rep["nodata"] = dp.sourceNoDataValue(1) if dp.sourceHasNoDataValue(1) else None
    rep["renderer"] = layer.renderer().type()
    rep["color_table"] = len(dp.colorTable(1))
    if rep["renderer"] == "paletted":
        rep["classes"] = [{"value": c.value, "label": c.label, "color": c.color.name()} for c in layer.renderer().classes()]
    errors = []
    for key in ("renderer", "nodata"):
        if key in spec and rep[key] != spec[key]:
            errors.append(f"{path}: {key} {rep[key]!r} != expected {spec[key]!r}")
    want = spec.get("labels") or {}
    got = {str(int(c["value"])): c["label"] for c in rep.get("classes", [])}
    for v, lab in want.items():
        if got.get(v) != lab:
            errors.append(f"{path}: class {v} is labelled {got.get(v)!r}, expected {lab!r}")
    return rep, errors


def _category_colours(layers) -> dict[str, dict[str, tuple[int, int, int]]]:
    """Fill colour (blended over white by its alpha and the layer opacity) of each used category, per layer."""
    out = {}
    for lyr in layers:
        r = lyr.renderer()
        if r is None or r.type() != "categorizedSymbol":
            continue
        idx = lyr.fields().indexOf(r.classAttribute())
        used = {str(v) for v in lyr.uniqueValues(idx)} if idx >= 0 else set()
        cols = {}
        for c in r.categories():
            if str(c.value()) not in used:
                continue
            q = c.symbol().color()
            a = q.alphaF() * c.symbol().opacity() * lyr.opacity()
            cols[str(c.value())] = tuple(round(v * a + 255 * (1 - a)) for v in (q.red(), q.green(), q.blue()))
        out[lyr.name()] = cols
    return out


def _date_range(rng):
    """A QgsDateTimeRange from ``["YYYY-MM-DD", "YYYY-MM-DD"]`` (whole days, end day included)."""
    from qgis.core import QgsDateTimeRange
    from qgis.PyQt.QtCore import QDate, QDateTime, QTime

    d0, d1 = (QDate.fromString(v, "yyyy-MM-dd") for v in rng)
    return QgsDateTimeRange(QDateTime(d0, QTime(0, 0, 0)), QDateTime(d1, QTime(23, 59, 59)))


def _temporal_count(layer, rng) -> int:
    """Features of ``layer`` that QGIS's own temporal filter keeps for the date range ``rng``."""
    from qgis.core import QgsFeatureRequest, QgsVectorLayerTemporalContext

    ctx = QgsVectorLayerTemporalContext()
    ctx.setLayer(layer)
    expr = layer.temporalProperties().createFilterString(ctx, _date_range(rng))
    return sum(1 for _ in layer.getFeatures(QgsFeatureRequest().setFilterExpression(expr) if expr else QgsFeatureRequest()))


def _render(layers, png: str, size: int = 800, tol: int = 25, *, extent_layers=None, time_range=None) -> dict:
    """Render ``layers`` (bottom first) to ``png``; count painted pixels and pixels of each category colour.

    ``extent_layers``: layers whose union (×1.1) is the extent (default ``layers``); ``time_range``: render as
    QGIS's temporal controller would for that ``[start, end]`` date range.
    """
    from qgis.core import QgsMapRendererParallelJob, QgsMapSettings, QgsRectangle
    from qgis.PyQt.QtCore import QSize
    from qgis.PyQt.QtGui import QColor

    settings = QgsMapSettings()
    settings.setLayers(list(reversed(layers)))  # QGIS draws the first layer of the list on top
    settings.setDestinationCrs(layers[0].crs())
    if time_range:
        settings.setIsTemporal(True)
        settings.setTemporalRange(_date_range(time_range))
    ext = QgsRectangle()
    ext.setMinimal()
    for lyr in extent_layers or layers:
        e = lyr.extent() if lyr.crs() == layers[0].crs() else None
        if e is not None and not e.isEmpty():
            ext.combineExtentWith(e)
    ext.scale(1.1)
    settings.setExtent(ext)
    settings.setOutputSize(QSize(size, size))
    settings.setBackgroundColor(QColor(255, 255, 255))
    job = QgsMapRendererParallelJob(settings)
    job.start()
    job.waitForFinished()
    img = job.renderedImage()
    img.save(png, "PNG")
    colours: dict[int, int] = {}
    step = 2
    total = 0
    for y in range(0, img.height(), step):
        for x in range(0, img.width(), step):
            rgb = img.pixel(x, y) & 0xFFFFFF
            colours[rgb] = colours.get(rgb, 0) + 1
            total += 1
    painted = total - colours.get(0xFFFFFF, 0)
    top = sorted(colours.items(), key=lambda kv: -kv[1])[:8]
    category_pixels = {}
    for lname, cats in _category_colours(layers).items():
        category_pixels[lname] = {}
        for value, (cr, cg, cb) in cats.items():
            category_pixels[lname][value] = sum(
                n for c, n in colours.items()
                if abs((c >> 16) - cr) <= tol and abs((c >> 8 & 255) - cg) <= tol and abs((c & 255) - cb) <= tol)
    return {"png": png, "width": img.width(), "height": img.height(), "painted_fraction": painted / max(total, 1),
            "distinct_colours": len(colours), "top_colours": [[f"#{c:06x}", n] for c, n in top],
            "category_pixels": category_pixels, "errors": len(job.errors())}


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    spec = json.loads(open(argv[1], encoding="utf-8").read())
    t0 = time.perf_counter()
    from qgis.core import (Qgis, QgsApplication, QgsCoordinateReferenceSystem, QgsCoordinateTransform,
                           QgsDistanceArea, QgsProject, QgsVectorLayer)

    app = QgsApplication([], False)
    app.initQgis()
    result: dict = {"qgis_version": Qgis.QGIS_VERSION, "layers": {}, "geojson": {}}
    errors: list[str] = []
    project = QgsProject.instance()
    try:
        by_name = {}
        if spec.get("project"):  # layers as the QGIS project file restores them (temporal settings included)
            if not project.read(spec["project"]):
                errors.append(f"QGIS could not read the project {spec['project']}: {project.error()}")
            ts = project.timeSettings()
            rng = ts.temporalRange()
            result["project"] = {
                "layers": {lyr.name(): {"valid": lyr.isValid(), "type": int(lyr.type()),
                                        "temporal": lyr.temporalProperties().isActive()}
                           for lyr in project.mapLayers().values()},
                "time_range": [rng.begin().toString("yyyy-MM-dd"), rng.end().toString("yyyy-MM-dd")],
                "time_step": [ts.timeStep(), int(ts.timeStepUnit())]}
        for name, lspec in spec.get("gpkg_layers", {}).items():
            found = project.mapLayersByName(name) if spec.get("project") else []
            if spec.get("project") and not found:
                errors.append(f"{name}: not in the project {spec['project']}")
                continue
            layer = found[0] if found else QgsVectorLayer(f"{spec['gpkg']}|layername={name}", name, "ogr")
            rep, errs = _layer_report(layer, {"area_rtol": spec.get("area_rtol", 0.005), **lspec}, QgsDistanceArea,
                                      QgsCoordinateTransform, QgsCoordinateReferenceSystem, project)
            result["layers"][name] = rep
            errors += errs
            if layer.isValid():
                if not found:
                    project.addMapLayer(layer, False)
                by_name[name] = layer
        for path, gspec in spec.get("geojson", {}).items():
            layer = QgsVectorLayer(path, path.rsplit("/", 1)[-1], "ogr")
            rep, errs = _layer_report(layer, {"area_rtol": spec.get("area_rtol", 0.005), **gspec}, QgsDistanceArea,
                                      QgsCoordinateTransform, QgsCoordinateReferenceSystem, project)
            result["geojson"][path] = rep
            errors += errs
        for path, rspec in spec.get("rasters", {}).items():
            rep, errs = _raster_report(path, rspec)
            result.setdefault("rasters", {})[path] = rep
            errors += errs
        names = [n for n in spec.get("render_layers", []) if n in by_name]
        if spec.get("png") and names:
            render = _render([by_name[n] for n in names], spec["png"])
            result["render"] = render
            if render["painted_fraction"] < 0.002 or render["distinct_colours"] < 3:
                errors.append(f"render is blank: {render['painted_fraction']:.4f} of pixels painted, "
                              f"{render['distinct_colours']} colours")
            for lname, cats in render["category_pixels"].items():
                for value, n in cats.items():
                    if n < 20:
                        errors.append(f"render: category {value!r} of {lname} shows in {n} sampled pixels; "
                                      "its style colour is not what QGIS painted")
            if render["errors"]:
                errors.append(f"QGIS reported {render['errors']} rendering error(s)")
        result["temporal_counts"] = [
            {**c, "qgis_count": _temporal_count(by_name[c["layer"]], c["range"])}
            for c in spec.get("temporal_counts", []) if c["layer"] in by_name]
        for c in result["temporal_counts"]:
            if c["qgis_count"] != c["count"]:
                errors.append(f"{c['layer']}: QGIS's temporal filter for {c['range']} keeps {c['qgis_count']} "
                              f"features, expected {c['count']}")
        sr = spec.get("season_render")
        if sr:
            every = [by_name[n] for n in sr["layers"] if n in by_name]
            one = [by_name[n] for n in sr["only"] if n in by_name]
            result["season_render"] = {
                "temporal": _render(every, sr["png"], extent_layers=every, time_range=sr["range"]),
                "only_season": _render(one, sr["png_only"], extent_layers=every),
                "all_seasons": _render(every, sr["png_all"], extent_layers=every),
            }
    finally:
        project.clear()
        app.exitQgis()
    result["errors"] = errors
    result["ok"] = not errors
    result["seconds"] = round(time.perf_counter() - t0, 2)
    print(json.dumps(result))
    sys.stdout.flush()
    sys.stderr.flush()
    # Tearing down this frame's PyQt/QGIS wrappers after exitQgis() segfaults (QGIS 3.22): leave at once.
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
