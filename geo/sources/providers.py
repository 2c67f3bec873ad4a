"""STAC provider profiles and Planetary Computer SAS signing.

A :class:`Provider` says where to search (API root or local ItemCollection file), which collection,
how asset keys map to band ids, and whether asset hrefs must be signed before reading. Signing happens
per read (:func:`read_signed`), never at search time: SAS tokens expire within the hour.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TypeVar
from urllib.parse import parse_qs, urlsplit, urlunsplit

import pystac

from geo.bands import BANDS
from geo.errors import AccessDeniedError, StacError
from geo.sources.remote import DEFAULT_POLICY, HostAllowlist, RetryPolicy, get, redact

log = logging.getLogger(__name__)
T = TypeVar("T")

EARTH_SEARCH_KEYS = {b.id: b.earth_search for b in BANDS.values()}
PLANETARY_COMPUTER_KEYS = {b.id: b.planetary_computer for b in BANDS.values()}


@dataclass(frozen=True)
class Provider:
    """Where and how to find Sentinel-2 L2A items.

    Attributes:
        name: profile name shown in logs.
        url: STAC API root URL ('' for a local file).
        collection: collection id of Sentinel-2 L2A.
        asset_keys: band id → asset key (``{"B04": "red", ...}``).
        signer: ``"planetary-computer"`` to sign asset hrefs with a SAS token at read time, else ``None``.
        token_url: SAS token endpoint; the token for a collection is ``GET {token_url}/{collection}``.
        page_size: items requested per page.
        policy: retry/timeout policy for its requests.
        local_path: a local ItemCollection JSON searched client-side instead of an API.
        asset_hosts: hosts that serve its assets besides the API's own host and port (entries as in
            :class:`geo.sources.remote.HostAllowlist`: ``host``, ``host:port``, ``.sub.domain``).
    """

    name: str
    url: str = ""
    collection: str = "sentinel-2-l2a"
    asset_keys: dict = field(default_factory=lambda: dict(EARTH_SEARCH_KEYS))
    signer: str | None = None
    token_url: str | None = None
    page_size: int = 100
    policy: RetryPolicy = RetryPolicy()
    local_path: Path | None = None
    asset_hosts: tuple[str, ...] = ()


PROVIDERS: dict[str, Provider] = {
    "earth-search": Provider("earth-search", "https://earth-search.aws.element84.com/v1",
                             asset_hosts=("sentinel-cogs.s3.us-west-2.amazonaws.com", "sentinel-cogs.s3.amazonaws.com")),
    "planetary-computer": Provider(
        "planetary-computer",
        "https://planetarycomputer.microsoft.com/api/stac/v1",
        asset_keys=dict(PLANETARY_COMPUTER_KEYS),
        signer="planetary-computer",
        token_url="https://planetarycomputer.microsoft.com/api/sas/v1/token",
        asset_hosts=(".blob.core.windows.net",),
    ),
}


def resolve_provider(provider: str | Provider) -> Provider:
    """A :class:`Provider` from a profile name, an http(s) URL or a local ItemCollection path."""
    if isinstance(provider, Provider):
        return provider
    text = str(provider).strip()
    if text in PROVIDERS:
        return PROVIDERS[text]
    scheme = urlsplit(text).scheme.lower()
    if scheme in ("http", "https"):
        return Provider(redact(text), text.rstrip("/"), policy=DEFAULT_POLICY)
    if scheme == "file":
        text = urlsplit(text).path
    elif scheme and len(scheme) > 1:
        raise StacError(
            f"provider {redact(text)!r} uses scheme {scheme!r}; use earth-search, planetary-computer, "
            "an http(s) STAC API URL or a local items.json path"
        )
    path = Path(text).expanduser()
    if path.suffix.lower() in (".json", ".geojson") or path.exists():
        return Provider(f"file:{path.name}", local_path=path.resolve())
    raise StacError(
        f"unknown provider {text!r}; use {', '.join(PROVIDERS)}, an http(s) STAC API URL or an items.json path"
    )


def asset_allowlist(provider: "str | Provider", extra_hosts: tuple[str, ...] = (),
                    items: "tuple[dict, ...] | list | None" = None) -> HostAllowlist:
    """Hosts and ports the assets of ``provider`` may be read from (and redirected to): its API's own
    host:port, its profile's ``asset_hosts`` and ``extra_hosts`` (config ``[search] asset_hosts``). For a local
    ItemCollection (the user's own file) also the host:port of every http(s) href its ``items`` name."""
    prov = resolve_provider(provider)
    entries = [*prov.asset_hosts, *extra_hosts]
    if prov.url:
        entries.append(prov.url)
    if prov.local_path is not None:
        for it in items or ():
            assets = it.get("assets", {}) if isinstance(it, dict) else {k: {"href": a.href} for k, a in it.assets.items()}
            entries += [a.get("href", "") for a in assets.values()
                        if str(a.get("href", "")).lower().startswith(("http://", "https://"))]
    return HostAllowlist.of(entries)


# -- Planetary Computer SAS tokens: hrefs are signed per read, never stored signed -------------------
#
# A token is valid for about an hour, a batch run lasts hours and resumes days later, so items, task specs,
# manifests and cache keys keep their hrefs unsigned. Search marks a signed provider's items with a
# :class:`Signer` (the token endpoint, no secret); every window read signs its href just before reading, with
# this process's cached token, and a refusal (HTTP 401/403) renews the token and retries that read once.
# Worker processes each keep their own cache.

#: Item property that marks an item's asset hrefs for signing at read time (a :meth:`Signer.to_dict`).
SIGNER_PROPERTY = "minewatch:signer"
#: A cached token is renewed this long before it expires.
REFRESH_MARGIN = dt.timedelta(minutes=5)


@dataclass(frozen=True)
class Signer:
    """Where the SAS tokens for one collection come from: ``GET {token_url}/{collection}``.

    Plain picklable values (no token): it travels inside items to worker processes.
    """

    token_url: str
    collection: str

    @property
    def endpoint(self) -> str:
        return f"{self.token_url.rstrip('/')}/{self.collection}"

    def to_dict(self) -> dict:
        return {"kind": "planetary-computer", "token_url": self.token_url, "collection": self.collection}

    @classmethod
    def of_item(cls, item: pystac.Item) -> "Signer | None":
        """The signer an item was marked with by :func:`mark_item`, or None (hrefs are read as they are)."""
        d = item.properties.get(SIGNER_PROPERTY)
        if not isinstance(d, dict) or d.get("kind") != "planetary-computer":
            return None
        url, collection = str(d.get("token_url") or ""), str(d.get("collection") or "")
        if urlsplit(url).scheme not in ("http", "https") or not collection:
            raise StacError(f"item {item.id} names no usable SAS token endpoint in {SIGNER_PROPERTY} "
                            f"({redact(url) or 'none'}); search the catalogue again")
        return cls(url, collection)


def signer_for(prov: Provider) -> Signer | None:
    """The :class:`Signer` of a provider whose asset hrefs must be signed, else None."""
    if prov.signer != "planetary-computer":
        return None
    if not prov.token_url:
        raise StacError(f"provider {prov.name} needs a token_url to sign asset hrefs")
    return Signer(prov.token_url, prov.collection)


def mark_item(item: pystac.Item, prov: Provider) -> pystac.Item:
    """``item`` marked for read-time signing when ``prov`` signs (unchanged otherwise); it holds no token."""
    signer = signer_for(prov)
    if signer is not None:
        item.properties[SIGNER_PROPERTY] = signer.to_dict()
    return item


_tokens: dict[str, tuple[str, dt.datetime]] = {}
_tokens_lock = threading.Lock()
_fetch_lock = threading.Lock()  # one token request at a time, however many reader threads need one
_denied: dict[str, tuple[str, int | None]] = {}  # endpoint -> (renewed token that was refused too, HTTP status)
_renewing: set[str] = set()  # endpoints whose token was dropped after a refusal: the next fetch is a renewal
_renewals: dict[str, str] = {}  # endpoint -> the token fetched as a renewal (refusing it too is final)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _cached(endpoint: str) -> str | None:
    with _tokens_lock:
        hit = _tokens.get(endpoint)
    return hit[0] if hit and hit[1] - _now() > REFRESH_MARGIN else None


def _request_token(endpoint: str, policy: RetryPolicy) -> tuple[str, dt.datetime]:
    resp = get(endpoint, policy=policy, what="SAS token request")
    try:
        doc = resp.json()
        token = str(doc["token"])
        expiry = dt.datetime.fromisoformat(str(doc["msft:expiry"]).replace("Z", "+00:00"))
    except (ValueError, KeyError, TypeError):
        raise StacError(f"SAS token endpoint {redact(endpoint)} answered without 'token'/'msft:expiry'; "
                        "check token_url") from None
    if expiry.tzinfo is None:
        expiry = expiry.replace(tzinfo=dt.timezone.utc)
    return token, expiry


def token_for(signer: Signer, policy: RetryPolicy = DEFAULT_POLICY) -> str:
    """This process's SAS token for ``signer``, fetched when missing or within :data:`REFRESH_MARGIN` of expiry."""
    token = _cached(signer.endpoint)
    if token is not None:
        return token
    with _fetch_lock:
        token = _cached(signer.endpoint)  # another thread may have just fetched it
        if token is None:
            token, expiry = _request_token(signer.endpoint, policy)
            with _tokens_lock:
                _tokens[signer.endpoint] = (token, expiry)
                if signer.endpoint in _renewing:
                    _renewing.discard(signer.endpoint)
                    _renewals[signer.endpoint] = token
            log.debug("got SAS token for %s valid until %s", signer.collection, expiry.isoformat())
    return token


def drop_token(signer: Signer, token: str | None = None) -> None:
    """Forget the cached token of ``signer`` (only if it is still ``token``: another thread may have renewed it)."""
    with _tokens_lock:
        hit = _tokens.get(signer.endpoint)
        if hit and (token is None or hit[0] == token):
            del _tokens[signer.endpoint]
            _renewing.add(signer.endpoint)


def clear_token_cache() -> None:
    """Forget every token of this process (and every refusal remembered by :func:`read_signed`)."""
    with _tokens_lock:
        _tokens.clear()
        _denied.clear()
        _renewing.clear()
        _renewals.clear()


def sign_href(href: str, token: str) -> str:
    """``href`` with ``token`` as its query (http(s) only). A SAS query already there (``sig=``) is
    replaced; another query is left alone."""
    parts = urlsplit(href)
    if parts.scheme not in ("http", "https") or (parts.query and "sig" not in parse_qs(parts.query)):
        return href
    return urlunsplit(parts._replace(query=token.lstrip("?")))


def read_signed(href: str, signer: Signer, read: Callable[[str], T], policy: RetryPolicy = DEFAULT_POLICY) -> T:
    """``read(url)`` with ``href`` signed for this read only; a refusal renews the token and reads once more.

    A token refused even though it was just renewed is remembered: later reads in this process fail at
    once instead of asking the token service again for every window.

    Raises:
        AccessDeniedError: refused again with a freshly issued token (one line; it holds no token).
    """
    for attempt in (1, 2):
        token = token_for(signer, policy)
        if _denied.get(signer.endpoint, ("", None))[0] == token:
            break
        try:
            out = read(sign_href(href, token))
        except AccessDeniedError as exc:
            with _tokens_lock:
                renewed = _renewals.get(signer.endpoint) == token  # another thread's renewal: refused as well
            if attempt == 2 or renewed:
                _denied[signer.endpoint] = (token, exc.status)
                break
            log.info("%s refused the SAS token (expired or revoked); renewing it and reading again", redact(href))
            drop_token(signer, token)
            continue
        if _renewals.get(signer.endpoint) == token:  # the renewal works: a later refusal may renew again
            with _tokens_lock:
                if _renewals.get(signer.endpoint) == token:
                    del _renewals[signer.endpoint]
        return out
    status = _denied.get(signer.endpoint, ("", None))[1]
    raise AccessDeniedError(
        f"{redact(href)} refused access (HTTP {status or '401/403'}) even with a freshly issued SAS token from "
        f"{redact(signer.endpoint)}; the token service grants no read access to these assets (revoked, or the "
        "wrong collection/token_url): check the provider, then rerun (finished tasks are kept)", status)


def with_url(prov: Provider, url: str, **changes) -> Provider:
    """A copy of a profile pointed at another root (e.g. a local stand-in of the same API)."""
    return replace(prov, url=url.rstrip("/"), **changes)
