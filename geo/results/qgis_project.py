"""``minewatch.qgs``: a QGIS project over a run folder's outputs, ready for the temporal controller.

Opening ``footprints.gpkg`` alone gives styled layers (``layer_styles``), but QGIS 3.22 resets a layer's temporal
settings to its data provider's defaults after loading that default style, so the temporal controller would see no
time-aware layers. The project file stores each layer's temporal settings itself (QGIS restores them as saved) and
the project's time range and step: one frame per year from the first season's start, so ▶ in the temporal
controller steps through the dry seasons. Paths are relative, so the run folder can be moved or zipped.

Layers, top first: sites (``#id`` labels), footprints, change (one layer per transition, then all transitions),
class rasters (paletted, each dated with its season). Only the vector layers of every season are switched on; QGIS
shows the season of the current frame.
"""

from __future__ import annotations

import re
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

from pyproj import CRS

from geo.fsutil import write_text
from geo.results.layers import period_dates
from geo.results.rasters import classmap_qml
from geo.results.styles import default_styles


def _inner(qml: str) -> tuple[str, str]:
    """The body of a QML document and the attributes of its ``<qgis>`` element."""
    m = re.search(r"<qgis([^>]*)>(.*)</qgis>", qml, re.S)
    return m.group(2), m.group(1)


def _srs(crs) -> str:
    c = CRS.from_user_input(crs.to_wkt() if hasattr(crs, "to_wkt") else crs)
    auth = ":".join(c.to_authority() or ("", ""))
    return (f"<srs><spatialrefsys><wkt>{escape(c.to_wkt())}</wkt>"
            f"<authid>{escape(auth)}</authid><description>{escape(c.name)}</description></spatialrefsys></srs>")


def _layer_id(name: str) -> str:
    return "mw_" + re.sub(r"\W", "_", name)


def _vector_layer(name: str, gpkg: str, crs, qml: str) -> str:
    body, attrs = _inner(qml)
    labels = ' labelsEnabled="1"' if 'labelsEnabled="1"' in attrs else ""
    return (f'<maplayer type="vector" geometry="Polygon" wkbType="Polygon"{labels} styleCategories="AllStyleCategories">'
            f"<id>{_layer_id(name)}</id><datasource>{escape(f'./{gpkg}|layername={name}')}</datasource>"
            f"<layername>{escape(name)}</layername>{_srs(crs)}<provider encoding=\"UTF-8\">ogr</provider>"
            f"{body}</maplayer>")


def _raster_layer(name: str, tif: str, crs, season: str) -> str:
    body, _ = _inner(classmap_qml())
    start, end = period_dates(season)
    temporal = (f'<temporal enabled="1" mode="0" fetchMode="0"><fixedRange><start>{start.isoformat()}T00:00:00Z'
                f"</start><end>{end.isoformat()}T23:59:59Z</end></fixedRange></temporal>")
    return (f'<maplayer type="raster" styleCategories="AllStyleCategories"><id>{_layer_id(name)}</id>'
            f"<datasource>./{escape(tif)}</datasource><layername>{escape(name)}</layername>{_srs(crs)}"
            f"<provider>gdal</provider>{temporal}{body}</maplayer>")


def project_xml(title: str, layers: dict[str, object], seasons: list[str], rasters: dict[str, str],
                gpkg: str = "footprints.gpkg") -> str:
    """The ``.qgs`` text. ``layers``: GeoPackage layer name → CRS; ``rasters``: season → class raster file name."""
    styles = default_styles(list(layers))
    order = ([n for n in layers if n.startswith("sites")] + [n for n in layers if n.startswith("footprints")]
             + [n for n in layers if n.startswith("change_")] + [n for n in layers if n == "change"])
    maplayers = [_vector_layer(n, gpkg, layers[n], styles[n]) for n in order if n in styles]
    tree = [(n, not n.startswith("change")) for n in order if n in styles]
    crs = next(iter(layers.values()), None)
    for season, tif in rasters.items():
        name = f"classmap_{season}"
        maplayers.append(_raster_layer(name, tif, crs, season))
        tree.append((name, False))
    tree_xml = "".join(
        f'<layer-tree-layer id="{_layer_id(n)}" name={quoteattr(n)} providerKey='
        f'"{"gdal" if n.startswith("classmap") else "ogr"}" checked="{"Qt::Checked" if on else "Qt::Unchecked"}" '
        f'expanded="0"/>' for n, on in tree)
    time = ""
    if seasons:
        t0 = min(period_dates(s)[0] for s in seasons)
        t1 = max(period_dates(s)[1] for s in seasons)
        time = (f'<ProjectTimeSettings cumulativeTemporalRange="0" timeStep="1" frameRate="1" timeStepUnit="y">'
                f"<TemporalRange><start>{t0.isoformat()}T00:00:00Z</start><end>{t1.isoformat()}T23:59:59Z</end>"
                "</TemporalRange></ProjectTimeSettings>")
    proj_crs = _srs(crs).replace("<srs>", "<projectCrs>").replace("</srs>", "</projectCrs>") if crs else ""
    return ("<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n"
            f'<qgis version="3.22.0" projectname={quoteattr(title)}><title>{escape(title)}</title>{proj_crs}'
            f"<layer-tree-group>{tree_xml}</layer-tree-group><projectlayers>{''.join(maplayers)}</projectlayers>"
            '<properties><Paths><Absolute type="bool">false</Absolute></Paths></properties>'
            f"{time}</qgis>\n")


def write_project(out: Path, title: str, layers: dict[str, object], seasons: list[str]) -> Path:
    """Write ``out/minewatch.qgs`` over ``footprints.gpkg`` and the ``classmap_<season>.tif`` files present."""
    rasters = {s: f"classmap_{s}.tif" for s in seasons if (out / f"classmap_{s}.tif").exists()}
    path = out / "minewatch.qgs"
    write_text(path, project_xml(title, layers, seasons, rasters))
    return path
