"""QGIS styles (QML) for minewatch layers, stored in a GeoPackage's ``layer_styles`` table.

QGIS reads ``layer_styles`` (the table its "Save style → in database" writes) and applies the row
with ``useAsDefault`` when a layer is opened, so GIS users get styled layers without a .qml file.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from xml.sax.saxutils import quoteattr

from geo.errors import disk_full_error

#: Fill colours (R,G,B,A) by category value, per styled attribute.
FOOTPRINT_COLOURS = {"leaching_pond": ("Leaching pond", "0,200,220,230", "0,80,110,255"),
                     "cleared_land": ("Cleared land", "230,120,40,150", "150,60,10,255")}
CHANGE_COLOURS = {"new": ("New site", "220,30,30,150", "140,0,0,255"),
                  "expanded": ("Expanded", "250,160,20,150", "160,90,0,255"),
                  "persisted": ("Persisted", "150,150,150,120", "80,80,80,255"),
                  "shrunk": ("Shrunk", "120,170,220,120", "40,90,140,255"),
                  "abandoned": ("Abandoned (not found in the later season)", "60,170,60,120", "20,100,20,255"),
                  "unseen_before": ("Not seen clear in the earlier season", "200,200,200,60", "120,120,120,255"),
                  "unseen_later": ("Not seen clear in the later season", "200,200,200,60", "120,120,120,255")}
SITE_COLOURS = {"": ("Mining site extent", "255,0,255,40", "200,0,200,255")}


def _symbol(name: str, fill: str, outline: str) -> str:
    opts = {"color": fill, "outline_color": outline, "outline_width": "0.4", "outline_width_unit": "MM",
            "style": "solid", "outline_style": "solid", "joinstyle": "miter"}
    options = "".join(f'<Option name="{k}" type="QString" value="{v}"/>' for k, v in opts.items())
    props = "".join(f'<prop k="{k}" v="{v}"/>' for k, v in opts.items())
    return (f'<symbol type="fill" name="{name}" alpha="1" clip_to_extent="1" force_rhr="0">'
            f'<layer class="SimpleFill" enabled="1" locked="0" pass="0"><Option type="Map">{options}</Option>{props}'
            f'</layer></symbol>')


def categorized_qml(attribute: str, categories: dict[str, tuple[str, str, str]]) -> str:
    """QML of a categorized fill renderer on ``attribute`` (value → (label, fill RGBA, outline RGBA))."""
    cats = "".join(f'<category render="true" symbol="{i}" value={quoteattr(v)} label={quoteattr(lab)}/>'
                   for i, (v, (lab, _, _)) in enumerate(categories.items()))
    syms = "".join(_symbol(str(i), fill, out) for i, (_, (_, fill, out)) in enumerate(categories.items()))
    return ("<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>"
            '<qgis version="3.22.0" styleCategories="Symbology">'
            f'<renderer-v2 type="categorizedSymbol" attr="{attribute}" symbollevels="0" enableorderby="0" forceraster="0">'
            f"<categories>{cats}</categories><symbols>{syms}</symbols></renderer-v2></qgis>")


def single_qml(label: str, fill: str, outline: str) -> str:
    """QML of a single-symbol fill renderer."""
    return ("<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>"
            '<qgis version="3.22.0" styleCategories="Symbology">'
            '<renderer-v2 type="singleSymbol" symbollevels="0" enableorderby="0" forceraster="0">'
            f"<symbols>{_symbol('0', fill, outline)}</symbols></renderer-v2></qgis>")


#: QGIS's vector temporal mode "start and end date from fields" (QgsVectorLayerTemporalProperties, 3.22).
TEMPORAL_START_END_FIELDS = 2


def temporal_xml(start: str = "period_start", end: str = "period_end") -> str:
    """QML ``<temporal>``: the layer is time-aware, each feature valid from ``start`` to ``end`` (both included).

    With it QGIS's temporal controller steps through the dry seasons and shows one season's features at a time.
    """
    return (f'<temporal enabled="1" mode="{TEMPORAL_START_END_FIELDS}" startField="{start}" endField="{end}" '
            'startExpression="" endExpression="" durationField="" durationUnit="d" fixedDuration="0" '
            'accumulate="0" limitMode="1"><fixedRange><start></start><end></end></fixedRange></temporal>')


def site_labels_xml(field: str = "site_id") -> str:
    """QML ``<labeling>``: each site labelled ``#<id>`` in bold purple with a white halo, at its centroid."""
    return ('<labeling type="simple"><settings calloutType="simple">'
            f'<text-style fieldName="concat(\'#\', &quot;{field}&quot;)" isExpression="1" fontFamily="DejaVu Sans" '
            'fontSize="10" fontSizeUnit="Point" fontWeight="75" fontItalic="0" textColor="128,0,128,255" '
            'textOpacity="1" namedStyle="Bold" blendMode="0" multilineHeight="1" allowHtml="0">'
            '<text-buffer bufferDraw="1" bufferSize="1" bufferSizeUnits="MM" bufferColor="255,255,255,255" '
            'bufferOpacity="1" bufferJoinStyle="128" bufferBlendMode="0" bufferNoFill="1"/></text-style>'
            '<text-format wrapChar="" multilineAlign="0" plussign="0" formatNumbers="0"/>'
            '<placement placement="1" offsetType="0" quadOffset="4" xOffset="0" yOffset="0" dist="0" '
            'centroidWhole="0" centroidInside="1" fitInPolygonOnly="0" priority="5"/>'
            '<rendering drawLabels="1" obstacle="1" limitNumLabels="0" maxNumLabels="2000" upsidedownLabels="0" '
            'displayAll="1" scaleVisibility="0" fontLimitPixelSize="0" zIndex="0" labelPerPart="0" '
            'mergeLines="0" minFeatureSize="0"/></settings></labeling>')


def _with(qml: str, *, temporal: bool = True, labels: str = "") -> str:
    """``qml`` with the temporal block (and labelling) added to its ``<qgis>`` element."""
    head, tail = qml.rsplit("</qgis>", 1)
    if labels:
        head = head.replace('styleCategories="Symbology"', 'styleCategories="Symbology|Labeling|Temporal" '
                            'labelsEnabled="1"', 1)
    else:
        head = head.replace('styleCategories="Symbology"', 'styleCategories="Symbology|Temporal"', 1)
    return head + labels + (temporal_xml() if temporal else "") + "</qgis>" + tail


def default_styles(layer_names: list[str], *, temporal: bool = True) -> dict[str, str]:
    """The QML for each minewatch layer name (``footprints*``, ``sites_*``, ``change*``).

    Footprints are categorised by class, change by change class (one layer per transition, plus ``change`` with
    every transition), sites get ``#id`` labels; with ``temporal`` every layer is time-aware on
    ``period_start``/``period_end`` (layers without those fields, e.g. ``detect`` output, pass ``False``).
    """
    out = {}
    for name in layer_names:
        if name.startswith("footprints"):
            out[name] = _with(categorized_qml("class_name", FOOTPRINT_COLOURS), temporal=temporal)
        elif name.startswith("change"):
            out[name] = _with(categorized_qml("change", CHANGE_COLOURS), temporal=temporal)
        elif name.startswith("sites"):
            out[name] = _with(single_qml(*SITE_COLOURS[""]), temporal=temporal, labels=site_labels_xml())
    return out


_CREATE = """
CREATE TABLE IF NOT EXISTS layer_styles (
  id INTEGER PRIMARY KEY AUTOINCREMENT, f_table_catalog TEXT(256), f_table_schema TEXT(256),
  f_table_name TEXT(256), f_geometry_column TEXT(256), styleName TEXT(30), styleQML TEXT, styleSLD TEXT,
  useAsDefault BOOLEAN, description TEXT, owner TEXT(30), ui TEXT(30),
  update_time DATETIME DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now'))
)"""


def write_layer_styles(gpkg: str | Path, styles: dict[str, str]) -> None:
    """Store QML ``styles`` (layer name → QML) as default styles in the GeoPackage's ``layer_styles`` table."""
    con = sqlite3.connect(str(gpkg))
    try:
        con.execute(_CREATE)
        con.execute(
            "INSERT OR IGNORE INTO gpkg_contents (table_name, data_type, identifier, description, last_change) "
            "VALUES ('layer_styles', 'attributes', 'layer_styles', 'QGIS layer styles', strftime('%Y-%m-%dT%H:%M:%fZ','now'))"
        )
        for layer, qml in styles.items():
            geom_col = con.execute(
                "SELECT column_name FROM gpkg_geometry_columns WHERE table_name = ?", (layer,)
            ).fetchone()
            con.execute("DELETE FROM layer_styles WHERE f_table_name = ?", (layer,))
            con.execute(
                "INSERT INTO layer_styles (f_table_catalog, f_table_schema, f_table_name, f_geometry_column, styleName,"
                " styleQML, styleSLD, useAsDefault, description, owner, ui) VALUES ('', '', ?, ?, ?, ?, '', 1, ?, '', '')",
                (layer, geom_col[0] if geom_col else "geom", f"minewatch {layer}", qml, "minewatch default style"),
            )
        con.commit()
    except sqlite3.OperationalError as exc:  # "database or disk is full"
        full = disk_full_error(exc, str(gpkg))
        if full is not None:
            raise full from None
        raise
    finally:
        con.close()
