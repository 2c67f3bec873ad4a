"""Items from a local STAC ItemCollection file (``--stac-url items.json``), as :func:`geo.sources.stac.search` uses
them in place of an API's answer, and the footprint checks an API's items go through too."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import pystac
import shapely
from shapely.geometry import shape

from geo.errors import StacError

log = logging.getLogger(__name__)


def read_item_file(path: Path) -> list[pystac.Item]:
    """Every item of a local STAC ItemCollection file; relative asset hrefs resolve against its folder."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise StacError(f"item file {path} does not exist; run 'minewatch demo' or pass a STAC API URL") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise StacError(f"item file {path} is not readable JSON ({exc}); regenerate it") from None
    feats = doc.get("features") if isinstance(doc, dict) and doc.get("type") == "FeatureCollection" else None
    if feats is None:
        raise StacError(f"item file {path} is not a STAC ItemCollection (a FeatureCollection of items)")
    items = []
    for n, f in enumerate(feats):
        if not isinstance(f, dict):
            raise StacError(f"item file {path}: feature {n} is {type(f).__name__} {str(f)[:40]!r}, not a STAC item "
                            "object; regenerate the file")
        fid = f.get("id")
        if not isinstance(fid, str) or not fid.strip():
            raise StacError(f"item file {path}: feature {n} has id {json.dumps(fid)[:40]}, not a non-empty string; give "
                            "every item its scene id as a string (e.g. \"S2A_47RMJ_20211202_0_L2A\") or regenerate the file")
        _check_hrefs(f, fid, path)
        try:
            item = with_utc(pystac.Item.from_dict(f, preserve_dict=False))
        except (KeyError, ValueError, TypeError, AttributeError, pystac.errors.STACError,
                pystac.errors.STACTypeError) as exc:
            raise StacError(f"item file {path}: feature {fid!r} is no valid STAC item ({str(exc)[:200]}); "
                            "fix the item or regenerate the file") from None
        problem = footprint_problem(item)
        if problem:
            raise StacError(f"item file {path}: item {fid!r} {problem}, so minewatch cannot tell where it lies; "
                            "fix its footprint or regenerate the file")
        item.bbox = usable_bbox(item.bbox)  # 6 numbers (with heights) → [west, south, east, north]
        items.append(item)
    # relative hrefs resolve against the file's folder
    for it in items:
        for a in it.assets.values():
            if "://" not in a.href and not Path(a.href).is_absolute():
                a.href = str((path.parent / a.href).resolve())
    return items


def _check_hrefs(f: dict, fid: str, path: Path) -> None:
    """Refuse an asset without a usable href (resolved against the file's folder, it would name the folder)."""
    assets = f.get("assets")
    for key, a in (assets.items() if isinstance(assets, dict) else ()):
        href = a.get("href") if isinstance(a, dict) else "?"
        if href is None or (isinstance(href, str) and not href.strip()):
            how = "has no href" if isinstance(a, dict) and "href" not in a else "has an empty href"
        elif not isinstance(href, str):
            how = f"has href {json.dumps(href)[:40]}, not a string"
        else:
            continue
        raise StacError(f"item file {path}: item {fid!r} asset {key!r} {how}; give the asset's file path or URL, "
                        "or regenerate the file")


def usable_bbox(b: object) -> list[float] | None:
    """``[west, south, east, north]`` of a STAC bbox (4 numbers, or 6 with heights); None when it is not one."""
    if not isinstance(b, (list, tuple)) or len(b) not in (4, 6):
        return None
    if any(isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) for v in b):
        return None
    w, s, e, n = (b[0], b[1], b[3], b[4]) if len(b) == 6 else b
    if not (-180 <= w <= 180 and -180 <= e <= 180 and -90 <= s <= n <= 90):
        return None
    return [float(w), float(s), float(e), float(n)]


def footprint_problem(item: pystac.Item) -> str | None:
    """Why ``item`` has no footprint minewatch can use (None when it has one): a bbox stated but not 4 or 6
    numbers in longitude/latitude, a geometry shapely cannot read, or neither a geometry nor a bbox."""
    if item.bbox is not None and usable_bbox(item.bbox) is None:
        return f"has bbox {str(item.bbox)[:60]}, not 4 numbers [west, south, east, north] (or 6 with heights)"
    if item.geometry is not None:
        try:
            geom = shape(item.geometry)
        except (ValueError, TypeError, AttributeError, IndexError, KeyError, shapely.errors.ShapelyError) as exc:
            return f"has a geometry that is no GeoJSON geometry ({str(exc)[:80]})"
        if geom.is_empty and item.bbox is None:
            return "has an empty geometry and no bbox"
    elif item.bbox is None:
        return "has neither a geometry nor a bbox"
    return None


def item_geometry(item: pystac.Item):
    """The item's geometry as shapely, or None when it has none or it is no readable GeoJSON geometry."""
    if not item.geometry:
        return None
    try:
        return shape(item.geometry)
    except (ValueError, TypeError, AttributeError, IndexError, KeyError, shapely.errors.ShapelyError):
        return None


def usable_api_items(items: list[pystac.Item], source: str) -> list[pystac.Item]:
    """``items`` (a STAC API's answer) without those it answered malformed: no usable footprint or an id that is no
    string (either would be lost silently later), dropped with a WARNING that counts them. A bbox of 6 numbers
    (with heights) becomes ``[west, south, east, north]``; a malformed one beside a readable geometry, its bounds;
    an unreadable geometry beside a usable bbox is dropped (the bbox stands for it)."""
    keep, bad = [], []
    for it in items:
        if not isinstance(it.id, str) or not it.id.strip():
            bad.append(f"{str(it.id)[:40]!r} (its id is no string)")
            continue
        geom, bbox = item_geometry(it), usable_bbox(it.bbox)
        if (geom is None or geom.is_empty) and bbox is None:
            bad.append(f"{it.id} ({footprint_problem(it) or 'has no footprint'})")
            continue
        if geom is None:
            it.geometry = None  # unreadable: the bbox stands for it
        it.bbox = bbox if bbox is not None else list(geom.bounds)
        keep.append(it)
    if bad:
        log.warning("STAC API %s answered %d item(s) with an unusable footprint or id; dropped, so their scenes are "
                    "missing from the season: %s", source, len(bad), "; ".join(bad[:5]) + (" …" if len(bad) > 5 else ""))
    return keep


def with_utc(item: pystac.Item) -> pystac.Item:
    """``item`` with its datetimes made timezone-aware: STAC datetimes are UTC (RFC 3339), and one written without
    its ``Z`` (naive) could not be compared with the others (a ``TypeError`` sorting the items)."""
    from datetime import timezone

    if item.datetime is not None and item.datetime.tzinfo is None:
        item.datetime = item.datetime.replace(tzinfo=timezone.utc)
    for key in ("start_datetime", "end_datetime"):
        v = getattr(item.common_metadata, key, None)
        if v is not None and v.tzinfo is None:
            setattr(item.common_metadata, key, v.replace(tzinfo=timezone.utc))
    return item


def of_collection(items: list[pystac.Item], collection: str, path: Path) -> list[pystac.Item]:
    """The items of ``collection``; a file holding items but none of it is an error (as an API without it is)."""
    keep = [it for it in items if it.collection_id == collection]
    if items and not keep:
        names = ", ".join(sorted({str(it.collection_id) for it in items}))[:300]
        raise StacError(f"item file {path} holds no item of collection {collection!r} (it has: {names}); "
                        "leave --collection out or name the file's collection")
    return keep
