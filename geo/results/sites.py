"""Group footprint polygons into mining sites and measure each site's extent.

A *site* is a cluster of footprint polygons (ponds and cleared land) whose gaps are at most
``SiteConfig.link_distance_m`` metres, that holds at least ``min_ponds`` leaching ponds. This follows
how site counts are made from pool maps (e.g. Earth Genome buffered pools and kept clusters of >3 pools;
Global Witness counted mining *sites*). Distances are measured in the polygons' projected (UTM) CRS.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import shapely

from geo.errors import CrsError
from geo.config import SiteConfig  # defined with the run settings

SITE_COLUMNS = [
    "site_id", "n_ponds", "pond_area_m2", "cleared_area_m2", "footprint_area_m2", "extent_area_m2", "geometry",
]


def empty_sites(crs) -> gpd.GeoDataFrame:
    data = {c: np.array([], dtype=np.float64) for c in SITE_COLUMNS if c != "geometry"}
    data["site_id"] = np.array([], dtype=np.int64)
    data["n_ponds"] = np.array([], dtype=np.int64)
    return gpd.GeoDataFrame(data, geometry=gpd.GeoSeries([], crs=crs), crs=crs)[SITE_COLUMNS]


def group_sites(footprints: gpd.GeoDataFrame, config: SiteConfig = SiteConfig()) -> tuple[gpd.GeoDataFrame, np.ndarray]:
    """Cluster footprint polygons into sites.

    Args:
        footprints: polygons with ``class`` (1 cleared land, 2 pond) and ``area_m2``, in a projected CRS.
        config: grouping rules.

    Returns:
        ``(sites, membership)``: a GeoDataFrame with one row per site (columns :data:`SITE_COLUMNS`,
        geometry = site extent, ids 1..n ordered west→east, north→south) and an int array giving each
        footprint row's site id (0 = in no site).
    """
    crs = footprints.crs
    if crs is None or not crs.is_projected:
        raise CrsError(f"site grouping needs footprints in a projected (UTM) CRS, got {crs}")
    membership = np.zeros(len(footprints), dtype=np.int64)
    if len(footprints) == 0:
        return empty_sites(crs), membership
    geoms = footprints.geometry.values
    half = config.link_distance_m / 2.0
    blobs = shapely.union_all(shapely.buffer(geoms, half, quad_segs=4))
    parts = list(getattr(blobs, "geoms", [blobs]))
    tree = shapely.STRtree(parts)
    # Each footprint belongs to the single blob that contains its (grown) geometry.
    pos = shapely.point_on_surface(geoms)
    src, dst = tree.query(pos, predicate="intersects")
    cluster = np.full(len(footprints), -1, dtype=np.int64)
    cluster[src] = dst
    rows = []
    classes = footprints["class"].to_numpy()
    areas = footprints["area_m2"].to_numpy()
    for k in range(len(parts)):
        idx = np.flatnonzero(cluster == k)
        if idx.size == 0:
            continue
        ponds = idx[classes[idx] == 2]
        cleared = idx[classes[idx] == 1]
        footprint = float(areas[idx].sum())
        if ponds.size < config.min_ponds or footprint < config.min_footprint_m2:
            continue
        members = shapely.union_all(geoms[idx])
        if config.extent == "hull":
            extent = shapely.convex_hull(members)
        else:
            extent = shapely.buffer(shapely.buffer(members, half, quad_segs=4), -half, quad_segs=4)
            extent = shapely.union(extent, members)
        rows.append((idx, int(ponds.size), float(areas[ponds].sum()), float(areas[cleared].sum()), footprint, extent))
    if not rows:
        return empty_sites(crs), membership
    # Stable ids: order by centroid, north→south then west→east.
    order = sorted(range(len(rows)), key=lambda i: (-rows[i][5].centroid.y, rows[i][5].centroid.x))
    out = []
    for site_id, i in enumerate(order, start=1):
        idx, n_ponds, pond_a, cleared_a, fp, extent = rows[i]
        membership[idx] = site_id
        out.append({"site_id": site_id, "n_ponds": n_ponds, "pond_area_m2": pond_a, "cleared_area_m2": cleared_a,
                    "footprint_area_m2": fp, "extent_area_m2": float(extent.area), "geometry": extent})
    return gpd.GeoDataFrame(out, geometry="geometry", crs=crs)[SITE_COLUMNS], membership
