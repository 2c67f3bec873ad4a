"""Items from a local STAC ItemCollection file (``--stac-url items.json``), as :func:`geo.sources.stac.search` uses
them in place of an API's answer."""

from __future__ import annotations

import json
from pathlib import Path

import pystac

from geo.errors import StacError


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
    for f in feats:
        try:
            items.append(pystac.Item.from_dict(f, preserve_dict=False))
        except (KeyError, ValueError, TypeError) as exc:
            raise StacError(f"item file {path}: feature {f.get('id', '?')!r} is no valid STAC item ({exc})") from None
    # relative hrefs resolve against the file's folder
    for it in items:
        for a in it.assets.values():
            if "://" not in a.href and not Path(a.href).is_absolute():
                a.href = str((path.parent / a.href).resolve())
    return items


def of_collection(items: list[pystac.Item], collection: str, path: Path) -> list[pystac.Item]:
    """The items of ``collection``; a file holding items but none of it is an error (as an API without it is)."""
    keep = [it for it in items if it.collection_id == collection]
    if items and not keep:
        names = ", ".join(sorted({str(it.collection_id) for it in items}))[:300]
        raise StacError(f"item file {path} holds no item of collection {collection!r} (it has: {names}); "
                        "leave --collection out or name the file's collection")
    return keep
