"""Load STAC items into a float32 reflectance stack on an analysis grid.

For each item and band only the window covering the grid is read (GDAL range reads through
:class:`geo.sources.cog_ranges.RangeFile` for http(s) hrefs, plain file reads for local paths) and warped onto
the grid: bilinear for reflectance (so 20 m bands land on the 10 m grid), nearest for SCL.
Reflectance is ``DN * scale + offset`` with the offset taken from item metadata: the asset's
``raster:bands`` scale/offset, else ``s2:processing_baseline`` (>= 04.00 → −1000 DN). Nodata (DN 0)
becomes NaN. Items of the same datatake (overlapping MGRS tiles) are mosaicked into one time step.
"""

from __future__ import annotations

import functools
import logging
import math
import warnings
from collections.abc import Callable
from concurrent.futures import wait
from pathlib import Path

import numpy as np
import pystac
import rasterio
import shapely
from rasterio.enums import Resampling
from rasterio.errors import NotGeoreferencedWarning, RasterioError, RasterioIOError
from rasterio.warp import reproject, transform_bounds
from rasterio.windows import Window, from_bounds

from geo.bands import ANALYSIS_BANDS, band_ids
from geo.sources.cache import WindowCache, cache_key
from geo.errors import CrsError, NoDataError, RasterError, StacError
from geo.sources.cog_ranges import GdalFileView, RangeFile, RemoteFileChanged, use_range_threads
from geo.sources.gdal_http import GDAL_ENV, choose_reader, gdal_options, http_error, resolve_redirects
from geo.grid import GeoGrid
from geo.sources.providers import Signer, read_signed
from geo.sources.remote import DEFAULT_POLICY, ByteCounter, RetryPolicy, redact
from geo.sources.assets import AssetExpect, _check_href, _local_path, asset_for, expect_for, scaling_for
from geo.sources.stac import datatake_key
from geo.sources.stac_local import item_geometry
from geo.sources.threads import window_pool
from geo.stack import ReflectanceStack

log = logging.getLogger(__name__)

# reproject() onto a bare ndarray warns while it builds its in-memory destination, before the
# destination transform is attached; the grid's transform is always given, so the warning is noise.
# (A module-scoped filter: warnings.catch_warnings is not thread-safe.)
warnings.filterwarnings("ignore", category=NotGeoreferencedWarning, module="rasterio.warp")

def _reread_if_changed(read: Callable[..., np.ndarray]) -> Callable[..., np.ndarray]:
    """``read`` once more when the file changed on the server since its cached header was read (the
    header has left the cache by then, so the second read fetches it afresh)."""

    @functools.wraps(read)
    def again(href: str, grid: GeoGrid, **kw) -> np.ndarray:
        try:
            return read(href, grid, **kw)
        except RemoteFileChanged as exc:
            log.info("%s", exc)
            return read(href, grid, **kw)

    return again


@_reread_if_changed
def read_window(
    href: str,
    grid: GeoGrid,
    *,
    kind: str = "reflectance",
    resampling: Resampling = Resampling.bilinear,
    policy: RetryPolicy = DEFAULT_POLICY,
    counter: ByteCounter | None = None,
    signer: Signer | None = None,
    reader: str | None = None,
    gdal_env: dict[str, str] | None = None,
    expect: AssetExpect | None = None,
) -> np.ndarray:
    """Warp the part of one single-band raster that covers ``grid`` onto it.

    An http(s) href is read by ``reader`` (:func:`geo.sources.gdal_http.choose_reader`: minewatch's range
    reader unless the user set GDAL HTTP settings or ``MINEWATCH_COG_READER``); GDAL reads with ``gdal_env``
    (default :func:`geo.sources.gdal_http.gdal_options` of ``policy``, taken in the calling thread).

    Returns float32 DN with NaN for nodata (``kind="reflectance"``) or uint8 with 0 for nodata
    (``kind="scl"``, always nearest). With a ``signer`` an http(s) href is signed for this read only
    (:func:`geo.sources.providers.read_signed`: a refused token is renewed and the read retried once). With
    ``expect`` the file's data type and CRS are checked against its item (:class:`geo.sources.assets.AssetExpect`).

    Raises:
        StacError: the host could not be reached after retries (AccessDeniedError: refused even with
        a fresh token). RasterError/CrsError: unreadable or ungeoreferenced raster.
    """
    reader = choose_reader(reader)
    env = GDAL_ENV if reader != "gdal" or _check_href(href) != "http" else \
        (gdal_env if gdal_env is not None else gdal_options(policy))
    if signer is not None and _check_href(href) == "http":
        return read_signed(href, signer, lambda url: _read_window(href, grid, kind, resampling, policy, counter, url,
                                                                  reader, env, expect), policy)
    return _read_window(href, grid, kind, resampling, policy, counter, href, reader, env, expect)


def _read_window(href: str, grid: GeoGrid, kind: str, resampling: Resampling, policy: RetryPolicy,
                 counter: ByteCounter | None, url: str, reader: str, env: dict[str, str],
                 expect: AssetExpect | None = None) -> np.ndarray:
    """:func:`read_window` of ``href`` fetched from ``url`` (``href`` signed); only ``href`` reaches GDAL and messages."""
    how = _check_href(href)
    gdal = how == "http" and reader == "gdal"
    rf: list[RangeFile] = []

    errors: list[BaseException] = []

    def opener(path, mode="rb"):
        if errors:  # GDAL tries a failed open again: answer with the same error, without another request
            raise errors[0]
        if not rf:  # GDAL may open the file more than once; fetch the header only once
            try:
                rf.append(RangeFile(url, policy=policy, counter=counter))
            except StacError as exc:  # GDAL would swallow it into a generic open error
                errors.append(exc)
                raise
        rf[0].seek(0)
        return GdalFileView(rf[0])

    scl = kind == "scl"
    dst = np.zeros(grid.shape, np.uint8) if scl else np.full(grid.shape, np.nan, np.float32)
    try:
        with rasterio.Env(**env):
            if gdal:  # GDAL follows redirects unseen: hand it the final URL, every hop checked (remote.get)
                ds = rasterio.open(resolve_redirects(url, policy=policy))
            elif how == "http":
                ds = rasterio.open(href, opener=opener)
            else:
                ds = rasterio.open(_local_path(href))
            with ds as src:
                if src.crs is None:
                    raise CrsError(f"{redact(href)} has no CRS; minewatch never assumes one")
                if expect is not None:
                    expect.check(src, href)
                l, b, r, t = transform_bounds(grid.crs, src.crs, *grid.bounds, densify_pts=21)
                sl, sb, sr, st = src.bounds
                if r <= sl or l >= sr or t <= sb or b >= st:
                    return dst  # no overlap: nothing to read
                nodata = src.nodata if src.nodata is not None else 0
                if rf:
                    _prefetch_tiles(src, rf[0], grid, (l, b, r, t))
                if _aligned_read(src, grid, dst, nodata, scl):
                    return dst
                reproject(
                    rasterio.band(src, 1), dst,
                    src_nodata=nodata, dst_transform=grid.transform, dst_crs=grid.crs,
                    dst_nodata=0 if scl else np.nan,
                    resampling=Resampling.nearest if scl else resampling, num_threads=1,
                )
    except (RasterioIOError, RasterioError) as exc:
        errors.extend(f.error for f in rf if f.error is not None)
        if errors:
            raise errors[0] from None
        if gdal and (err := http_error(exc, href)) is not None:
            raise err from None
        raise RasterError(f"cannot read {redact(href)} ({str(exc)[:200]}); the file may be corrupt or "
                          "not a GeoTIFF") from None
    except StacError:
        raise
    return dst


def _aligned_read(src, grid: GeoGrid, dst: np.ndarray, nodata: float, scl: bool) -> bool:
    """Copy pixels straight across when ``src`` shares the grid's CRS, pixel size and pixel edges.

    A plain window read touches only the COG tiles under the grid (a warp would also fetch a halo).
    Returns False when the rasters are not aligned, leaving ``dst`` untouched.
    """
    st, gt = src.transform, grid.transform
    if src.crs != grid.crs or (st.b, st.d, gt.b, gt.d) != (0, 0, 0, 0):
        return False
    if abs(st.a - gt.a) > 1e-9 * abs(gt.a) or abs(st.e - gt.e) > 1e-9 * abs(gt.e):
        return False
    col = (gt.c - st.c) / st.a
    row = (gt.f - st.f) / st.e
    if abs(col - round(col)) > 1e-6 or abs(row - round(row)) > 1e-6:
        return False
    col, row = int(round(col)), int(round(row))
    r0, r1 = max(row, 0), min(row + grid.height, src.height)
    c0, c1 = max(col, 0), min(col + grid.width, src.width)
    if r1 <= r0 or c1 <= c0:
        return True
    arr = src.read(1, window=Window(c0, r0, c1 - c0, r1 - r0))
    block = dst[r0 - row:r1 - row, c0 - col:c1 - col]
    if scl:
        block[...] = np.where(arr == nodata, 0, arr)
    else:
        block[...] = np.where(arr == nodata, np.nan, arr.astype(np.float32))
    return True


#: Grid pixels beyond the grid's footprint that a warp may read (the reach of GDAL's common kernels; a
#: kernel scaled down to a coarser grid reaches this many grid pixels, not source pixels).
WARP_PAD_PX = 3


def _is_aligned(src, grid: GeoGrid) -> bool:
    """True when ``src`` shares the grid's CRS, pixel size and pixel edges (a plain window read)."""
    st, gt = src.transform, grid.transform
    if src.crs != grid.crs or (st.b, st.d, gt.b, gt.d) != (0, 0, 0, 0):
        return False
    if abs(st.a - gt.a) > 1e-9 * abs(gt.a) or abs(st.e - gt.e) > 1e-9 * abs(gt.e):
        return False
    col, row = (gt.c - st.c) / st.a, (gt.f - st.f) / st.e
    return abs(col - round(col)) <= 1e-6 and abs(row - round(row)) <= 1e-6


def _tile_ranges(src, rows: tuple[int, int], cols: tuple[int, int]) -> tuple[list[int], list[int]]:
    """Byte offsets and sizes of band 1's tiles (or strips) under pixel ``rows`` × ``cols`` (end exclusive)."""
    bh, bw = src.block_shapes[0]
    offsets, sizes = [], []
    for r in range(rows[0] // bh, (rows[1] - 1) // bh + 1):
        for c in range(cols[0] // bw, (cols[1] - 1) // bw + 1):
            off = src.get_tag_item(f"BLOCK_OFFSET_{c}_{r}", "TIFF", bidx=1)
            size = src.get_tag_item(f"BLOCK_SIZE_{c}_{r}", "TIFF", bidx=1)
            if off and size:  # sparse tiles have neither
                offsets.append(int(off))
                sizes.append(int(size))
    return offsets, sizes


def _prefetch_tiles(src, rf: RangeFile, grid: GeoGrid, bounds: tuple[float, float, float, float]) -> None:
    """Fetch the tiles of ``src`` that reading ``bounds`` (the grid, in ``src``'s CRS) onto ``grid`` needs,
    in few parallel requests, before GDAL asks for them one at a time (a tile missed here is still read)."""
    win = from_bounds(*bounds, transform=src.transform)
    scale = max(1.0, abs(win.width) / grid.width, abs(win.height) / grid.height)  # source px per grid px
    pad = 0 if _is_aligned(src, grid) else math.ceil(WARP_PAD_PX * scale)
    r0, c0 = math.floor(win.row_off + 1e-6) - pad, math.floor(win.col_off + 1e-6) - pad
    r1 = math.ceil(win.row_off + win.height - 1e-6) + pad
    c1 = math.ceil(win.col_off + win.width - 1e-6) + pad
    rows, cols = (max(r0, 0), min(r1, src.height)), (max(c0, 0), min(c1, src.width))
    if rows[1] > rows[0] and cols[1] > cols[0]:
        rf.prefetch(*_tile_ranges(src, rows, cols))


def _touches(item: pystac.Item, grid_ll) -> bool:
    """False only when the item's footprint certainly misses the grid (lon/lat, with a small margin)."""
    geom = item_geometry(item)
    if geom is None or geom.is_empty:  # none, or unreadable: no evidence that it misses
        return True
    return geom.intersects(grid_ll.buffer(1e-3))


def _to_cached(arr: np.ndarray, kind: str) -> np.ndarray:
    """A window as the cache stores it: integer DN (uint16 reflectance, 0 = nodata; SCL as it is)."""
    if kind == "scl":
        return arr
    return np.where(np.isnan(arr), 0, np.clip(np.round(arr), 1, 65535)).astype(np.uint16)


def _from_cached(arr: np.ndarray, kind: str) -> np.ndarray:
    """A cached window as :func:`read_window` returns it (float32 DN, NaN nodata; SCL unchanged)."""
    if kind == "scl":
        return arr
    return np.where(arr == 0, np.nan, arr.astype(np.float32)).astype(np.float32)


def load_stack(
    items: list[pystac.Item],
    grid: GeoGrid,
    *,
    bands: tuple[str, ...] | list[str] = ANALYSIS_BANDS,
    with_scl: bool = True,
    cache_dir: Path | None = None,
    cache_max_bytes: int | None = None,
    resampling: str = "bilinear",
    policy: RetryPolicy = DEFAULT_POLICY,
    asset_keys: dict | None = None,
    workers: int = 4,
    counter: ByteCounter | None = None,
    reader: str | None = None,
) -> ReflectanceStack:
    """Read ``items`` onto ``grid`` as a :class:`~geo.stack.ReflectanceStack`.

    Args:
        items: STAC items (Earth Search v1 or Planetary Computer shaped). Items :func:`geo.sources.stac.search` marked
            for signing get each http(s) href signed just before its read, never in the cache key.
        grid: target grid (UTM, 10 m for analysis).
        bands: band ids or aliases, in output order.
        with_scl: also load the Scene Classification Layer (nearest neighbour).
        cache_dir: folder for cached windows (:mod:`geo.sources.cache`; None: no cache); a rerun with the same
            items and grid reads nothing. Reflectance windows are rounded to whole DN (as the source holds them; a
            warp's fractions are below the sensor's quantisation) with or without a cache, so the cache changes nothing.
        cache_max_bytes: size cap of ``cache_dir`` (default :data:`geo.sources.cache.DEFAULT_MAX_BYTES`).
        resampling: GDAL resampling name for reflectance bands (``bilinear``, ``average``, ...).
        policy: retry/timeout policy for http reads.
        asset_keys: band id → asset key for catalogues with other naming.
        workers: concurrent window reads, on :func:`geo.sources.threads.window_pool` (loads running at once in this
            process share its threads); also the most COG range requests in flight at once in this process
            (:func:`geo.sources.cog_ranges.use_range_threads`: a window's tiles are fetched in parallel within it).
        counter: tally of bytes fetched over HTTP by the range reader (default: :data:`geo.sources.remote.FETCHED`).
        reader: ``"ranges"`` or ``"gdal"`` for http(s) hrefs; default :func:`geo.sources.gdal_http.choose_reader`.

    Returns:
        One time step per datatake (items of overlapping tiles of one pass are mosaicked, first
        valid pixel wins); ``item_ids`` joins their ids with ``+``.

    Raises:
        NoDataError: no items. StacError: a host stayed unreachable. RasterError: bad asset/metadata.
    """
    if not items:
        raise NoDataError("no items to load; widen the period or raise --max-cloud")
    ids = band_ids(tuple(bands))
    try:
        rs = Resampling[resampling]
    except KeyError:
        raise RasterError(f"unknown resampling {resampling!r}; use bilinear, average, cubic or nearest") from None
    cache = WindowCache(cache_dir, cache_max_bytes) if cache_dir is not None else None
    reader = choose_reader(reader)  # here, in the caller's thread: its rasterio.Env counts
    gdal_env = gdal_options(policy) if reader == "gdal" else None
    order = sorted(items, key=lambda it: (it.datetime, it.id))
    groups: dict[tuple, list[pystac.Item]] = {}
    for it in order:
        groups.setdefault(datatake_key(it), []).append(it)
    layers = list(ids) + (["SCL"] if with_scl else [])

    grid_ll = shapely.box(*transform_bounds(grid.crs, "EPSG:4326", *grid.bounds, densify_pts=21))
    jobs = []  # (group index, item, layer)
    for gi, group in enumerate(groups.values()):
        for it in group:
            for layer in layers:
                jobs.append((gi, it, layer))

    def run(job):
        _gi, it, layer = job
        key_name, asset = asset_for(it, layer, asset_keys)
        kind = "scl" if layer == "SCL" else "reflectance"
        href = asset.href
        key = None
        if cache is not None:
            stamp = ""
            if _check_href(href) == "file":
                st = Path(_local_path(href)).stat()
                stamp = f"{st.st_size}:{st.st_mtime_ns}"
            key = cache_key(href=redact(href) if _check_href(href) == "http" else _local_path(href), stamp=stamp,
                            grid=grid.to_dict(), kind=kind, resampling=rs.name)
            hit = cache.get(key)
            if hit is not None:
                return _from_cached(hit, kind)
        if not _touches(it, grid_ll):  # footprint misses the grid: fetch nothing
            arr = np.zeros(grid.shape, np.uint8) if kind == "scl" else np.full(grid.shape, np.nan, np.float32)
            return arr
        arr = read_window(href, grid, kind=kind, resampling=rs, policy=policy, counter=counter,
                          signer=Signer.of_item(it), reader=reader, gdal_env=gdal_env,
                          expect=expect_for(it, asset, kind, key_name))
        stored = _to_cached(arr, kind)  # whole DN, as the source holds them: cached or not, the same values
        if cache is not None:
            cache.put(key, stored)
        arr = _from_cached(stored, kind)
        if kind == "reflectance":
            sc = scaling_for(it, asset)
            log.debug("%s %s: scale %g offset %g from %s", it.id, key_name, sc.scale, sc.offset, sc.source)
        return arr

    # scaling problems should surface before any byte is fetched
    for gi, it, layer in jobs:
        if layer != "SCL":
            scaling_for(it, asset_for(it, layer, asset_keys)[1])
    use_range_threads(workers)  # io_threads bounds the range requests in flight, too
    t, h, w = len(groups), grid.height, grid.width
    data = np.full((t, len(ids), h, w), np.nan, np.float32)
    scl = np.zeros((t, h, w), np.uint8) if with_scl else None
    futures = [window_pool(workers).submit(run, job) for job in jobs]
    try:
        # each window goes into the stack as soon as it is read (in job order): no second copy of the stack
        for (gi, it, layer), fut in zip(jobs, futures):
            arr = fut.result()
            if layer == "SCL":
                np.copyto(scl[gi], arr, where=scl[gi] == 0)
                continue
            sc = scaling_for(it, asset_for(it, layer, asset_keys)[1])
            refl = arr * np.float32(sc.scale)  # float32 (a cached window is never changed in place)
            refl += np.float32(sc.offset)
            cur = data[gi, ids.index(layer)]
            np.copyto(cur, refl, where=np.isnan(cur))  # first valid pixel of the datatake wins
    finally:  # on an error, nothing of this load runs on past it: queued reads are dropped, running ones awaited
        for fut in futures:
            fut.cancel()
        wait(futures)
    times = tuple(g[0].datetime for g in groups.values())
    item_ids = tuple("+".join(it.id for it in g) for g in groups.values())
    if cache is not None:
        log.info("window cache: %d hits, %d misses", cache.hits, cache.misses)
    return ReflectanceStack(data=data, scl=scl, bands=ids, times=times, item_ids=item_ids, grid=grid)
