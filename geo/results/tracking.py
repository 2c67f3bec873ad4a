"""Stable site ids across periods: a site keeps its id while it persists.

Sites of consecutive periods are matched when their extents overlap, or, failing that, when they lie within
``max_gap_m`` of each other (a site whose extent shifted a little). Each connected group of matches decides:

- one earlier site ↔ one later site: the later site keeps the id;
- several earlier sites → one later site (**merge**): it keeps the id of the earlier site with the largest
  footprint; the others are recorded in ``merged_from``;
- one earlier site → several later sites (**split**): the later site with the largest footprint keeps the id;
  the others get new ids and record the earlier id in ``split_from``;
- several ↔ several: handled as merges into the largest later site, the other later sites as splits.

A later site that matches nothing is matched against sites last seen in an older period (a site missed in one
cloudy season comes back under its id); otherwise it gets the next unused id. Ids are never reused.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import shapely


def _match(prev: gpd.GeoDataFrame, curr: gpd.GeoDataFrame, max_gap_m: float) -> list[tuple[int, int]]:
    """Index pairs (prev row, curr row) that overlap, or, for a curr site overlapping nothing, are within max_gap_m."""
    if not len(prev) or not len(curr):
        return []
    pg, cg = prev.geometry.values, curr.geometry.values
    tree = shapely.STRtree(pg)
    pairs = []
    for j in range(len(cg)):
        hits = [int(i) for i in tree.query(cg[j], predicate="intersects")]
        if not hits and max_gap_m > 0:
            hits = [int(i) for i in tree.query(cg[j], predicate="dwithin", distance=max_gap_m)]
            if hits:
                d = shapely.distance(pg[hits], cg[j])
                hits = [hits[int(np.argmin(d))]]
        pairs += [(i, j) for i in hits]
    return pairs


def _groups(pairs: list[tuple[int, int]]) -> list[tuple[set[int], set[int]]]:
    """Connected components of the bipartite match graph as (prev rows, curr rows)."""
    groups: list[tuple[set[int], set[int]]] = []
    for i, j in pairs:
        hit = [g for g in groups if i in g[0] or j in g[1]]
        merged = ({i}, {j})
        for g in hit:
            merged[0].update(g[0])
            merged[1].update(g[1])
            groups.remove(g)
        groups.append(merged)
    return groups


def track_sites(periods: list[tuple[str, gpd.GeoDataFrame]], *, max_gap_m: float = 50.0
                ) -> tuple[list[dict[int, int]], list[dict[int, dict]]]:
    """Assign stable ids to each period's sites.

    Args:
        periods: ``(period, sites)`` in time order; ``sites`` has ``site_id`` (this period's own numbering),
            ``footprint_area_m2`` and extent geometry in one projected CRS.
        max_gap_m: how far apart non-overlapping extents may be and still be one site.

    Returns:
        ``(ids, events)``: per period, a map from the period's own ``site_id`` to the stable id, and per
        period, stable id → ``{"merged_from": [...], "split_from": int | None}`` for sites that merged or split.
    """
    next_id = 1
    ids_out: list[dict[int, int]] = []
    events_out: list[dict[int, dict]] = []
    prev: gpd.GeoDataFrame | None = None
    prev_ids: list[int] = []
    dormant: dict[int, object] = {}  # stable id → last extent, for sites absent from the previous period
    for _, sites in periods:
        own = [int(v) for v in sites["site_id"]] if len(sites) else []
        stable: list[int | None] = [None] * len(own)
        events: dict[int, dict] = {}
        area = sites["footprint_area_m2"].to_numpy() if len(sites) else np.array([])
        if prev is not None and len(prev) and len(sites):
            parea = prev["footprint_area_m2"].to_numpy()
            for gp, gc in _groups(_match(prev, sites, max_gap_m)):
                gp_l, gc_l = sorted(gp), sorted(gc)
                keep_prev = max(gp_l, key=lambda i: parea[i])
                keep_curr = max(gc_l, key=lambda j: area[j])
                stable[keep_curr] = prev_ids[keep_prev]
                if len(gp_l) > 1:
                    events.setdefault(prev_ids[keep_prev], {})["merged_from"] = sorted(
                        prev_ids[i] for i in gp_l if i != keep_prev)
                for j in gc_l:
                    if j != keep_curr:
                        stable[j] = next_id
                        events.setdefault(next_id, {})["split_from"] = prev_ids[keep_prev]
                        next_id += 1
        if dormant and len(sites):
            keys = list(dormant)
            geoms = np.array([dormant[k] for k in keys], dtype=object)
            for j in range(len(own)):
                if stable[j] is not None:
                    continue
                d = shapely.distance(geoms, sites.geometry.values[j])
                k = int(np.argmin(d))
                if d[k] <= max_gap_m and keys[k] not in stable:
                    stable[j] = keys[k]
        for j in range(len(own)):
            if stable[j] is None:
                stable[j] = next_id
                next_id += 1
        if prev is not None:
            for i, sid in enumerate(prev_ids):
                if sid not in stable:
                    dormant[sid] = prev.geometry.values[i]
        for sid in stable:
            dormant.pop(sid, None)
        ids_out.append(dict(zip(own, [int(s) for s in stable])))
        events_out.append(events)
        prev, prev_ids = sites, [int(s) for s in stable]
    return ids_out, events_out
