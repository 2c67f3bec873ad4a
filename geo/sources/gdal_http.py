"""Which reader fetches an http(s) COG, and GDAL's own HTTP reader (``/vsicurl/``) when it is the one.

Two readers serve http(s) hrefs (:func:`geo.sources.load.read_window`):

* ``"ranges"`` (default): :class:`geo.sources.cog_ranges.RangeFile`, minewatch's range reader. On a link with
  50–100 ms per request it loaded the benchmark catalogues 10–25 % faster than GDAL ``/vsicurl/`` with the
  settings below, because it sends fewer requests (no ``HEAD`` per file, headers kept between tasks); see
  ``benchmarks/bench_read.py`` and the README.
* ``"gdal"``: GDAL's ``/vsicurl/`` with :data:`GDAL_HTTP_ENV` (parallel merged range requests, retries, block
  cache). It honours every ``GDAL_*``/``CPL_*`` setting GDAL documents (proxies, headers, certificates,
  timeouts, retries, caches).

:func:`choose_reader` picks ``"gdal"`` whenever the user set one of GDAL's HTTP settings (environment variable
or an enclosing ``rasterio.Env``), so such a setting always reaches the reads; ``MINEWATCH_COG_READER``
(``ranges`` or ``gdal``) forces one.
"""

from __future__ import annotations

import math
import os
import re

import rasterio
import rasterio.env

from geo.errors import AccessDeniedError, ConfigError, StacError
from geo.sources.remote import DEFAULT_POLICY, HostAllowlist, RetryPolicy, current_allowlist, get, redact, session

#: GDAL settings for reading COGs: no sibling-file probing, and ``/vsicurl/`` fetches only rasters: GeoTIFF, JPEG 2000
#: (Sentinel-2's own format) and URLs without an extension (``{noext}``; an API's ``.../B04``), never a sidecar
#: (``.aux.xml``, ``.ovr``, ``.msk``). Before, ``.jp2`` and extension-less URLs were refused by GDAL's reader.
GDAL_ENV = {"GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
            "CPL_VSIL_CURL_ALLOWED_EXTENSIONS": ".tif,.TIF,.tiff,.TIFF,.jp2,.JP2,{noext}"}
#: What GDAL's own HTTP reader adds: a window's tiles in parallel range requests with adjacent ones merged, a
#: per-file block cache, the header in one request. A user's own setting of any of these wins.
GDAL_HTTP_ENV = {**GDAL_ENV, "GDAL_HTTP_MULTIRANGE": "PARALLEL", "GDAL_HTTP_MERGE_CONSECUTIVE_RANGES": "YES",
                 "VSI_CACHE": "TRUE", "GDAL_INGESTED_BYTES_AT_OPEN": "32768"}
#: Ways to read an http(s) COG.
READERS = ("ranges", "gdal")
#: Environment variable that forces a reader.
READER_ENV = "MINEWATCH_COG_READER"
#: Settings only GDAL's HTTP client honours: when the user set one, reads go through GDAL so it applies.
GDAL_HTTP_SETTINGS = re.compile(r"^(GDAL_HTTP_|CPL_VSIL_CURL_|CPL_CURL_|GDAL_PROXY|VSI_CACHE)")


def _user_settings() -> dict[str, str]:
    """GDAL settings of the environment and of an enclosing ``rasterio.Env`` (minewatch's own ``GDAL_ENV`` aside)."""
    outer = rasterio.env.getenv() if rasterio.env.hasenv() else {}
    return {**os.environ, **{k: str(v) for k, v in outer.items()}}


def choose_reader(reader: str | None = None) -> str:
    """The reader for http(s) COGs: ``reader`` if given, else ``$MINEWATCH_COG_READER``, else ``"gdal"`` when the
    user set any of GDAL's HTTP settings (:data:`GDAL_HTTP_SETTINGS`), else ``"ranges"``.

    Raises:
        ConfigError: an unknown reader name.
    """
    choice = reader or os.environ.get(READER_ENV, "").strip().lower() or None
    if choice is None:
        user = _user_settings()
        own = set(GDAL_ENV)
        choice = "gdal" if any(GDAL_HTTP_SETTINGS.match(k) and k not in own for k in user) else "ranges"
    if choice not in READERS:
        raise ConfigError(f"unknown COG reader {choice!r} (from {READER_ENV} or the caller); use ranges or gdal")
    return choice


def gdal_options(policy: RetryPolicy = DEFAULT_POLICY) -> dict[str, str]:
    """GDAL settings for ``/vsicurl/`` reads under ``policy``, less those the user set (environment variable or
    enclosing ``rasterio.Env``): the user's value wins."""
    # GDAL_HTTP_TIMEOUT is libcurl's total time per request (the deadline of remote.get); a transfer slower than
    # 1 byte/s for timeout_s is cut (a server that drips bytes cannot hold a read).
    timeout = str(int(math.ceil(policy.timeout_s)))
    opts = {**GDAL_HTTP_ENV, "GDAL_HTTP_MAX_RETRY": str(max(0, policy.attempts - 1)),
            "GDAL_HTTP_RETRY_DELAY": str(policy.backoff_s), "GDAL_HTTP_TIMEOUT": str(int(math.ceil(policy.deadline_s))),
            "GDAL_HTTP_CONNECTTIMEOUT": timeout, "GDAL_HTTP_LOW_SPEED_LIMIT": "1", "GDAL_HTTP_LOW_SPEED_TIME": timeout}
    user = _user_settings()
    return {k: v for k, v in opts.items() if k not in user}


def user_headers() -> dict[str, str]:
    """The headers the user gave GDAL (``GDAL_HTTP_HEADERS``: ``Name: value`` pairs, comma- or line-separated)."""
    raw = _user_settings().get("GDAL_HTTP_HEADERS", "")
    pairs = [p.split(":", 1) for p in re.split(r"\r?\n|,(?=\s*[\w-]+\s*:)", raw) if ":" in p]
    return {k.strip(): v.strip() for k, v in pairs if k.strip()}


def resolve_redirects(url: str, *, policy: RetryPolicy = DEFAULT_POLICY, allow: HostAllowlist | None = None) -> str:
    """The URL that ``url`` finally serves from, every hop checked as in :func:`geo.sources.remote.get` (one ranged
    GET of byte 0, with the user's ``GDAL_HTTP_HEADERS``).

    GDAL's ``/vsicurl/`` (libcurl) follows redirects on its own and GDAL 3.10 has no setting to stop it or to see
    each hop, so GDAL is handed the URL this returns (its hops already checked) — never the original URL.
    """
    allow = allow if allow is not None else current_allowlist()
    final = [url]

    def hop_hook(resp, *_a, **_k):
        final[0] = resp.url

    s = session()
    s.hooks["response"].append(hop_hook)
    try:
        get(url, policy=policy, headers={**user_headers(), "Range": "bytes=0-0"}, allow=allow, what="COG read")
    finally:
        s.hooks["response"].remove(hop_hook)
    return final[0]


_STATUS = re.compile(r"HTTP response code:\s*(\d{3})")


def http_error(exc: Exception, href: str) -> StacError | None:
    """The :class:`StacError` a failed ``/vsicurl/`` read stands for (None when it is not an HTTP failure):
    401/403 → :class:`AccessDeniedError` (a signed read renews its token), other statuses and network
    failures → :class:`StacError` naming the host's answer."""
    text = re.sub(r"\?[^\s'\"]*", "", str(exc))  # no query string (signatures) in a message
    m = _STATUS.search(text)
    status = int(m.group(1)) if m else None
    if status in (401, 403):
        return AccessDeniedError(f"COG read {redact(href)} answered HTTP {status}; the signature may have expired "
                                 "or access is denied", status)
    if status is not None and status >= 400:
        return StacError(f"COG read {redact(href)} answered HTTP {status} after GDAL's retries; check the URL, or "
                         "rerun later if the server is overloaded (finished tasks are kept)")
    said = re.sub(r"(?i)(/vsicurl/)?https?://\S+", "", text)  # what GDAL said, without the URL it names
    if re.search(r"(?i)curl|timed out|resolve host|connect|connection|ssl|HTTP", said):
        return StacError(f"COG read {redact(href)} failed ({text[:160]}); the server is unreachable: check the "
                         "network/URL (and GDAL_HTTP_* settings) and rerun later (finished tasks are kept)")
    return None
