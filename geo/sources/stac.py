"""Search Sentinel-2 L2A scenes: STAC APIs through pystac-client, or a local ItemCollection JSON.

Providers (see :mod:`geo.sources.providers`): Earth Search v1 (default), Planetary Computer (asset hrefs
signed with a SAS token at read time), any STAC API URL, or a local ``ItemCollection`` file (the demo's
``catalog/items.json``), which is searched client-side with the same rules.

The cloud-cover filter runs server-side when the API's conformance lists the ``query`` or
``filter`` extension, and always client-side as well (so an API that ignores it changes nothing).
Duplicates are dropped: the same tile and datatake reprocessed under a newer baseline (the newest
processing is kept), and the same datatake seen in overlapping MGRS tiles (tiles are kept only while
they add AOI coverage).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import time
from urllib.parse import urljoin

import pystac
import requests
import shapely
import urllib3
from requests import Request
from pystac_client import Client
from pystac_client.conformance import ConformanceClasses
from pystac_client.exceptions import APIError
from pystac_client.stac_api_io import StacApiIO
from shapely.geometry import box

from geo.aoi import Aoi
from geo.errors import StacError
from geo.periods import Period
from geo.sources.providers import PROVIDERS, SIGNER_PROPERTY, Provider, mark_item, resolve_provider
from geo.sources.stac_local import item_geometry, of_collection, read_item_file, usable_api_items, usable_bbox, with_utc
from geo.sources.remote import (RETRY_STATUSES, RetryPolicy, TransientHTTPError, check_hop, current_allowlist,
                                parse_retry_after, read_body, redact)

log = logging.getLogger(__name__)

__all__ = ["PROVIDERS", "Provider", "search", "scene_rows", "datatake_key", "dedup_items"]


class _RetryingStacIO(StacApiIO):
    """pystac-client I/O whose every request retries 5xx/429 (Retry-After), timeouts, drops and truncation."""

    def __init__(self, policy: RetryPolicy):
        super().__init__(timeout=policy.timeout_s, max_retries=None)
        self.policy = policy

    def _send(self, href: str, prepped) -> tuple[requests.Response, bytes]:
        """Send ``prepped``, redirects followed by hand (each hop checked by :func:`check_hop` before it is
        requested; 301/302/303 turn a POST into a GET); the whole try ends by the policy's deadline."""
        deadline = time.monotonic() + self.policy.deadline_s
        for _hop in range(self.policy.max_redirects + 1):
            resp = self.session.send(prepped, timeout=self.timeout, allow_redirects=False, stream=True)
            if not (resp.is_redirect and resp.headers.get("Location")):
                resp._content = read_body(resp, deadline)
                return resp, resp._content
            nxt, keep = urljoin(prepped.url, resp.headers["Location"]), resp.status_code in (307, 308)
            resp.close()
            check_hop(href, nxt, current_allowlist(), "STAC API")
            prepped = self.session.prepare_request(Request(method=prepped.method if keep else "GET", url=nxt,
                                                           data=prepped.body if keep else None,
                                                           headers=dict(prepped.headers) if keep else None))
        raise StacError(f"STAC API {redact(href)} redirected more than {self.policy.max_redirects} times; check the URL")

    def request(self, href, method=None, headers=None, parameters=None) -> str:  # noqa: D401
        method = (method or "GET").upper()
        last = "no try made"
        for attempt in range(1, self.policy.attempts + 1):
            if method in ("POST", "PUT", "PATCH"):
                req = Request(method=method, url=href, headers=headers, json=parameters)
            else:
                req = Request(method=method, url=href, headers=headers, params=dict(parameters or {}))
            prepped = self.session.prepare_request(req)
            retry_after = None
            try:
                resp, body = self._send(href, prepped)
                if resp.status_code in RETRY_STATUSES:
                    raise TransientHTTPError(f"HTTP {resp.status_code}",
                                             parse_retry_after(resp.headers.get("Retry-After")))
                if not 200 <= resp.status_code < 300:
                    raise APIError.from_response(resp)
                text = body.decode("utf-8")
                if "json" in resp.headers.get("Content-Type", "json"):
                    json.loads(text)  # a truncated body without Content-Length shows up here
                return text
            except TransientHTTPError as exc:
                last, retry_after = str(exc), exc.retry_after
            except (requests.exceptions.RequestException, urllib3.exceptions.HTTPError, ValueError) as exc:
                last = exc.__class__.__name__
            if attempt < self.policy.attempts:
                wait = self.policy.delay(attempt, retry_after)
                log.info("STAC %s %s failed (%s); retry %d/%d in %.1f s", method, redact(href), last,
                         attempt, self.policy.attempts - 1, wait)
                time.sleep(wait)
        raise StacError(
            f"STAC API {redact(href)} failed after {self.policy.attempts} tries (last: {last}); "
            "check the URL and your network, or rerun later"
        )


def search(
    aoi: Aoi,
    period: Period,
    *,
    provider: str | Provider = "earth-search",
    max_cloud: float = 80.0,
    limit: int | None = None,
    policy: RetryPolicy | None = None,
    collection: str | None = None,
) -> list[pystac.Item]:
    """Sentinel-2 L2A items over ``aoi`` within ``period``, at most ``max_cloud`` % cloud cover.

    Args:
        aoi: area of interest (EPSG:4326 geometry).
        period: inclusive date range.
        provider: ``"earth-search"``, ``"planetary-computer"``, an http(s) STAC API URL, a local
            ItemCollection JSON path, or a :class:`Provider`.
        max_cloud: largest ``eo:cloud_cover`` kept, percent.
        limit: keep at most this many items (the least cloudy), after de-duplication.
        policy: retry/timeout policy (default: the provider's).
        collection: collection id to search instead of the provider's (``sentinel-2-l2a``).

    Returns:
        Items sorted by acquisition time. Asset hrefs are never signed here (SAS tokens expire within the
        hour): a signing provider's items carry a ``minewatch:signer`` mark instead, and each read signs.

    Raises:
        StacError: the API cannot be reached or answers nonsense; the local file is unreadable.
    """
    if not 0 <= max_cloud <= 100:
        raise StacError(f"max_cloud must be a percentage 0–100, got {max_cloud}")
    prov = resolve_provider(provider)
    if collection:
        prov = dataclasses.replace(prov, collection=collection)
    policy = policy or prov.policy
    if prov.local_path is not None:
        raw = read_item_file(prov.local_path)  # the user's own file: its signing marks stand
        if collection:  # asked for explicitly: a file of another collection must not answer for it
            raw = of_collection(raw, collection, prov.local_path)
    else:
        raw = usable_api_items(_search_api(prov, aoi, period, max_cloud, policy), redact(prov.url))
        for it in raw:  # only the provider profile says where tokens come from, never the API's answer
            it.properties.pop(SIGNER_PROPERTY, None)
            with_utc(it)
    kept = [it for it in raw if _matches(it, aoi, period, max_cloud)]
    items = dedup_items(kept, aoi)
    if limit is not None:
        items = sorted(items, key=lambda it: (_cloud(it), it.datetime))[: max(0, limit)]
    items.sort(key=lambda it: (it.datetime, it.id))
    items = [mark_item(it, prov) for it in items]  # hrefs stay unsigned: signed per read (geo.sources.load)
    log.info("%s: %d items found, %d after filters, %d after de-duplication", prov.name, len(raw),
             len(kept), len(items))
    return items


# -- back-ends ---------------------------------------------------------------------------------

def _search_api(prov: Provider, aoi: Aoi, period: Period, max_cloud: float,
                policy: RetryPolicy) -> list[pystac.Item]:
    io = _RetryingStacIO(policy)
    try:
        client = Client.open(prov.url, stac_io=io)
    except APIError as exc:
        raise StacError(f"STAC API {redact(prov.url)} refused to open ({str(exc)[:200]}); check the URL") from None
    except (requests.exceptions.RequestException, pystac.STACError, ValueError) as exc:
        raise StacError(f"STAC API {redact(prov.url)} did not answer with a STAC catalog ({exc}); check the URL") from None
    kw: dict = {}
    if client.conforms_to(ConformanceClasses.FILTER):
        kw = {"filter": {"op": "<=", "args": [{"property": "eo:cloud_cover"}, max_cloud]},
              "filter_lang": "cql2-json"}
        how = "server-side (filter)"
    elif client.conforms_to(ConformanceClasses.QUERY):
        kw = {"query": {"eo:cloud_cover": {"lte": max_cloud}}}
        how = "server-side (query)"
    else:
        how = "client-side (API lists neither query nor filter)"
    log.info("searching %s collection %s; cloud filter %s", redact(prov.url), prov.collection, how)
    try:
        s = client.search(collections=[prov.collection], intersects=query_geometry(aoi),
                          datetime=period.interval, limit=prov.page_size, **kw)
        found = list(s.items())  # follows 'next' links page by page
        if not found:
            _check_collection(client, prov)
        return found
    except APIError as exc:
        raise StacError(f"STAC API {redact(prov.url)} rejected the search ({str(exc)[:300]}); "
                        f"does it serve collection {prov.collection!r}?") from None


#: An AOI with more vertices is sent to a STAC API as its bounding box (items are then matched against the
#: full AOI here): APIs refuse or time out on huge request bodies.
MAX_QUERY_VERTICES = 1000


def query_geometry(aoi: Aoi) -> dict:
    """The GeoJSON geometry sent to the API: the AOI itself, or its bounding box when it has more than
    :data:`MAX_QUERY_VERTICES` vertices (results are filtered against the full AOI by :func:`_matches`)."""
    n = shapely.get_num_coordinates(aoi.geometry)
    if n <= MAX_QUERY_VERTICES:
        return aoi.geometry.__geo_interface__
    log.info("AOI %s has %d vertices; searching its bounding box and matching items to the full AOI", aoi.name, n)
    return shapely.box(*aoi.geometry.bounds).__geo_interface__


def _check_collection(client: Client, prov: Provider) -> None:
    """Tell an empty result apart from a wrong collection id (APIs answer both with no items)."""
    try:
        if client.get_collection(prov.collection) is None:
            raise KeyError(prov.collection)
    except (APIError, KeyError, ValueError, pystac.STACError) as exc:
        names = ""
        try:
            names = ", ".join(sorted(c.id for c in client.get_collections()))[:300]
        except (APIError, pystac.STACError, ValueError):
            pass
        raise StacError(f"STAC API {redact(prov.url)} has no collection {prov.collection!r}"
                        + (f" (it has: {names})" if names else "") + "; set the collection in the provider") from exc


# -- filters and de-duplication ----------------------------------------------------------------

def cloud_cover(item: pystac.Item) -> float | None:
    """``eo:cloud_cover`` as a percentage; None when absent or not one (a non-number string, < 0, > 100, NaN)."""
    c = item.properties.get("eo:cloud_cover")
    if c is None or isinstance(c, bool):
        return None
    try:
        v = float(c)
    except (TypeError, ValueError):
        v = float("nan")
    if not 0 <= v <= 100:  # NaN fails too
        log.warning("item %s has eo:cloud_cover %r, not a percentage; treated as unknown (ranked last)",
                    item.id, c)
        return None
    return v


def _cloud(item: pystac.Item) -> float:
    """Cloud cover for ranking: unknown counts as fully cloudy (ranked last), never as clear."""
    c = cloud_cover(item)
    return 100.0 if c is None else c


def _footprint(item: pystac.Item):
    """The item's footprint (lon/lat): its geometry when readable and not empty, else its bbox, else None."""
    geom = item_geometry(item)
    if geom is not None and not geom.is_empty:
        return geom
    b = usable_bbox(item.bbox)
    return box(*b) if b else None


def _matches(item: pystac.Item, aoi: Aoi, period: Period, max_cloud: float) -> bool:
    when = item.datetime or _parse(item.properties.get("start_datetime"))
    if when is None or not period.contains(when.astimezone(dt.timezone.utc) if when.tzinfo else when):
        return False
    fp = _footprint(item)
    if fp is None or not fp.intersects(aoi.geometry):
        return False
    cc = cloud_cover(item)
    if cc is None:
        log.debug("item %s has no usable eo:cloud_cover; kept", item.id)
        return True
    return cc <= max_cloud


def _parse(value) -> dt.datetime | None:
    if not value:
        return None
    try:
        return dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


def baseline(item: pystac.Item) -> str | None:
    """The processing baseline ``"NN.NN"`` from ``s2:processing_baseline`` (or ``processing:version``)."""
    b = item.properties.get("s2:processing_baseline") or item.properties.get("processing:version")
    return str(b) if b is not None else None


def mgrs_tile(item: pystac.Item) -> str:
    p = item.properties
    if p.get("s2:mgrs_tile"):
        return str(p["s2:mgrs_tile"])
    if p.get("mgrs:utm_zone") and p.get("mgrs:latitude_band") and p.get("mgrs:grid_square"):
        return f"{int(p['mgrs:utm_zone']):02d}{p['mgrs:latitude_band']}{p['mgrs:grid_square']}"
    return "?"


def datatake_key(item: pystac.Item) -> tuple:
    """Identity of one satellite pass: (platform, UTC date, relative orbit).

    A Sentinel-2 satellite passes a place at most once a day, so this groups the same datatake
    across overlapping MGRS tiles (whose per-tile sensing times differ by seconds) and across
    reprocessings (whose ids and baselines differ).
    """
    p = item.properties
    when = item.datetime or _parse(p.get("start_datetime"))
    day = when.astimezone(dt.timezone.utc).date() if when and when.tzinfo else (when.date() if when else None)
    orbit = p.get("sat:relative_orbit") or p.get("s2:relative_orbit")
    return (str(p.get("platform", "")).lower(), day, orbit)


def _newness(item: pystac.Item) -> tuple:
    p = item.properties
    b = baseline(item) or "00.00"
    stamp = p.get("s2:generation_time") or p.get("updated") or p.get("created") or ""
    return (tuple(int(x) for x in b.split(".") if x.isdigit()), str(stamp), item.id)


def dedup_items(items: list[pystac.Item], aoi: Aoi | None = None) -> list[pystac.Item]:
    """Drop duplicate scenes.

    1. Same datatake and same MGRS tile (a reprocessing): keep the newest (highest baseline, then
       latest generation/updated time).
    2. Same datatake in overlapping tiles: keep the tile covering most of the AOI, then others only
       while they add AOI coverage. Without an AOI, one tile per datatake is kept.
    """
    by_tile: dict[tuple, pystac.Item] = {}
    for it in items:
        k = (datatake_key(it), mgrs_tile(it))
        if k not in by_tile or _newness(it) > _newness(by_tile[k]):
            if k in by_tile:
                log.debug("dropping %s: reprocessed as %s", by_tile[k].id, it.id)
            by_tile[k] = it
        else:
            log.debug("dropping %s: reprocessed as %s", it.id, by_tile[k].id)
    by_take: dict[tuple, list[pystac.Item]] = {}
    for (take, _tile), it in by_tile.items():
        by_take.setdefault(take, []).append(it)
    out: list[pystac.Item] = []
    for group in by_take.values():
        if len(group) == 1 or aoi is None:
            out.append(max(group, key=lambda it: (_cover(it, aoi), it.id)) if aoi else group[0])
            continue
        group.sort(key=lambda it: (-_cover(it, aoi), it.id))
        covered = shapely.Polygon()
        for i, it in enumerate(group):
            fp = _footprint(it)
            gain = fp.intersection(aoi.geometry).difference(covered).area if fp is not None else 0.0
            if i == 0 or gain > 1e-6 * aoi.geometry.area:
                out.append(it)
                covered = covered.union(fp.intersection(aoi.geometry))
            else:
                log.debug("dropping %s: same datatake as a tile that already covers the AOI", it.id)
            if covered.area >= aoi.geometry.area * (1 - 1e-9):
                break
    return out


def _cover(item: pystac.Item, aoi: Aoi | None) -> float:
    fp = _footprint(item)
    if aoi is None or fp is None:
        return 0.0
    return fp.intersection(aoi.geometry).area


def scene_rows(items: list[pystac.Item]) -> list[dict]:
    """One row per item for tables: id, date, cloud %, baseline, tile, platform."""
    return [
        {
            "id": it.id,
            "date": it.datetime.strftime("%Y-%m-%d %H:%M") if it.datetime else "",
            "cloud_pct": "" if cloud_cover(it) is None else round(cloud_cover(it), 1),
            "baseline": baseline(it) or "",
            "tile": mgrs_tile(it),
            "platform": it.properties.get("platform", ""),
        }
        for it in items
    ]
