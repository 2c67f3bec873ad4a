"""STAC provider profiles and Planetary Computer SAS signing.

A :class:`Provider` says where to search (API root or local ItemCollection file), which collection,
how asset keys map to band ids, and whether asset hrefs must be signed before reading.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import urlsplit

import pystac

from geo.bands import BANDS
from geo.errors import StacError
from geo.remote import DEFAULT_POLICY, RetryPolicy, get, redact

log = logging.getLogger(__name__)

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
        signer: ``"planetary-computer"`` to append a SAS token to asset hrefs, else ``None``.
        token_url: SAS token endpoint; the token for a collection is ``GET {token_url}/{collection}``.
        page_size: items requested per page.
        policy: retry/timeout policy for its requests.
        local_path: a local ItemCollection JSON searched client-side instead of an API.
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


PROVIDERS: dict[str, Provider] = {
    "earth-search": Provider("earth-search", "https://earth-search.aws.element84.com/v1"),
    "planetary-computer": Provider(
        "planetary-computer",
        "https://planetarycomputer.microsoft.com/api/stac/v1",
        asset_keys=dict(PLANETARY_COMPUTER_KEYS),
        signer="planetary-computer",
        token_url="https://planetarycomputer.microsoft.com/api/sas/v1/token",
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


# -- Planetary Computer SAS tokens -------------------------------------------------------------

_tokens: dict[str, tuple[str, dt.datetime]] = {}
_tokens_lock = threading.Lock()


def sas_token(prov: Provider, policy: RetryPolicy | None = None) -> str:
    """A SAS token for ``prov.collection``, cached until five minutes before it expires."""
    if not prov.token_url:
        raise StacError(f"provider {prov.name} needs a token_url to sign asset hrefs")
    key = f"{prov.token_url}/{prov.collection}"
    now = dt.datetime.now(dt.timezone.utc)
    with _tokens_lock:
        hit = _tokens.get(key)
        if hit and hit[1] - now > dt.timedelta(minutes=5):
            return hit[0]
    resp = get(key, policy=policy or prov.policy, what="SAS token request")
    try:
        doc = resp.json()
        token = str(doc["token"])
        expiry = dt.datetime.fromisoformat(str(doc["msft:expiry"]).replace("Z", "+00:00"))
    except (ValueError, KeyError, TypeError):
        raise StacError(f"SAS token endpoint {redact(key)} answered without 'token'/'msft:expiry'; "
                        "check token_url") from None
    if expiry.tzinfo is None:
        expiry = expiry.replace(tzinfo=dt.timezone.utc)
    with _tokens_lock:
        _tokens[key] = (token, expiry)
    log.debug("got SAS token for %s valid until %s", prov.collection, expiry.isoformat())
    return token


def clear_token_cache() -> None:
    with _tokens_lock:
        _tokens.clear()


def sign_href(href: str, token: str) -> str:
    """Append a SAS token to an http(s) href (hrefs already carrying a query are left alone)."""
    if urlsplit(href).scheme not in ("http", "https") or "?" in href:
        return href
    return f"{href}?{token.lstrip('?')}"


def sign_item(item: pystac.Item, prov: Provider, policy: RetryPolicy | None = None) -> pystac.Item:
    """A copy of ``item`` whose asset hrefs carry the provider's SAS token."""
    if prov.signer != "planetary-computer":
        return item
    token = sas_token(prov, policy)
    out = item.clone()
    for a in out.assets.values():
        a.href = sign_href(a.href, token)
    out.properties["minewatch:signed_until"] = _tokens[f"{prov.token_url}/{prov.collection}"][1].isoformat()
    return out


def with_url(prov: Provider, url: str, **changes) -> Provider:
    """A copy of a profile pointed at another root (e.g. a local stand-in of the same API)."""
    return replace(prov, url=url.rstrip("/"), **changes)
