"""HTTP with retries for STAC requests and COG range reads.

One retry policy serves both: exponential backoff on HTTP 5xx, on 429 (honouring ``Retry-After``),
on timeouts, dropped connections and truncated bodies (a body shorter than its ``Content-Length`` or
than the requested range). COG range reads built on it live in :mod:`geo.sources.cog_ranges`.

URLs are logged without their query string: SAS tokens and other signatures never reach the logs.
"""

from __future__ import annotations

import contextlib
import email.utils
import logging
import random
import re
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit, urlunsplit

import requests
import urllib3

from geo.errors import AccessDeniedError, StacError

log = logging.getLogger(__name__)

#: HTTP statuses worth another try.
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try an HTTP request.

    Attributes:
        attempts: total tries per request (first try included).
        backoff_s: first back-off delay in seconds; doubles on every retry (with ±25 % jitter).
        max_backoff_s: cap on one delay, seconds; also caps a server's ``Retry-After``.
        timeout_s: connect and read timeout of one try, seconds (a stalled server counts as a failure).
        deadline_s: the most one try of a small request may take from request to last byte, seconds: a server
            that drips its body (never stalling ``timeout_s``) is cut off here; such a try is retried once, not
            ``attempts`` times. A large range gets ``min_rate_bps`` more time per byte asked for.
        min_rate_bps: bytes per second a large answer must at least average (extends the deadline of a range
            request by its length / this rate, so a slow but honest link is not cut off).
        max_redirects: redirect hops followed per request, each checked against the allowlist.
    """

    attempts: int = 5
    backoff_s: float = 0.5
    max_backoff_s: float = 30.0
    timeout_s: float = 30.0
    deadline_s: float = 30.0
    min_rate_bps: float = 256 * 1024
    max_redirects: int = 5

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait before try ``attempt + 1`` (``attempt`` counts from 1)."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_backoff_s)
        base = min(self.backoff_s * 2 ** (attempt - 1), self.max_backoff_s)
        return base * random.uniform(0.75, 1.25)


DEFAULT_POLICY = RetryPolicy()


def redact(url: str) -> str:
    """``url`` without query string, fragment or user info: safe to log."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date); None if absent/garbled."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


_QUERY = re.compile(r"\?(?:[^\s\"'=&?]+=[^\s\"'&]*&?)+")


class RedactQueryFilter(logging.Filter):
    """Strips query strings (SAS tokens, signatures) from URLs in log records of other libraries."""

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        if "?" in msg and "=" in msg:
            record.msg, record.args = _QUERY.sub("?<redacted>", msg), None
        return True


#: Loggers that write request URLs (with their query strings) at DEBUG level.
URL_LOGGERS = ("urllib3.connectionpool", "rasterio._vsiopener", "rasterio._base", "rasterio._env",
               "rasterio.env", "rasterio", "pystac_client.stac_api_io")
_redactor = RedactQueryFilter()
for _name in URL_LOGGERS:
    logging.getLogger(_name).addFilter(_redactor)


_DEFAULT_PORTS = {"http": 80, "https": 443}


def origin(url: str) -> tuple[str, str, int | None]:
    """``(scheme, host, port)`` of ``url``, lower-case, the port made explicit (80 for http, 443 for https)."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:  # a port that is not a number
        port = -1
    return scheme, (parts.hostname or "").lower(), port if port is not None else _DEFAULT_PORTS.get(scheme)


@dataclass(frozen=True)
class HostAllowlist:
    """Hosts, with their ports, that http(s) reads may reach, redirects included.

    Entries are ``host`` (default port of the URL's scheme: 80 for http, 443 for https), ``host:port``,
    ``.example.org`` (any sub-domain, default port) or ``.example.org:port``, or a URL (its host and port).
    Only http and https URLs are ever allowed.
    """

    entries: tuple[str, ...] = ()

    @classmethod
    def of(cls, entries: Iterable[str]) -> "HostAllowlist":
        out = []
        for e in entries:
            e = str(e).strip().lower()
            if "://" in e:
                _scheme, host, port = origin(e)
                e = f"{host}:{port}" if port else host
            if e:
                out.append(e)
        return cls(tuple(dict.fromkeys(out)))

    def permits(self, url: str) -> bool:
        scheme, host, port = origin(url)
        if scheme not in _DEFAULT_PORTS or not host:
            return False
        for e in self.entries:
            name, _, p = e.rpartition(":") if e.rpartition(":")[2].isdigit() else (e, "", "")
            if (int(p) if p else _DEFAULT_PORTS[scheme]) != port:
                continue
            if host == name or (name.startswith(".") and host.endswith(name)):
                return True
        return False

    def describe(self) -> str:
        return ", ".join(self.entries) or "no host"


_allow = threading.local()
_allow_global: list[HostAllowlist | None] = [None]


@contextlib.contextmanager
def use_allowlist(allow: HostAllowlist | None) -> Iterator[None]:
    """Within the block, :func:`get` in this process follows redirects only to hosts ``allow`` permits
    (None: only to the origin of the URL asked for). Set process-wide so the read threads of a task see it."""
    before = _allow_global[0]
    _allow_global[0] = allow
    try:
        yield
    finally:
        _allow_global[0] = before


def current_allowlist() -> HostAllowlist | None:
    """The allowlist :func:`use_allowlist` set, if any."""
    return _allow_global[0]


def _same_site(first: str, target: str) -> bool:
    """True when ``target`` is ``first``'s origin, or its https upgrade on the default port."""
    a, b = origin(first), origin(target)
    return a == b or (a[1] == b[1] and a[0] == "http" and a[2] == 80 and b[0] == "https" and b[2] == 443)


class RedirectRefused(StacError):
    """A redirect pointed at a host (or port, or scheme) the allowlist does not permit. Exit code 3."""


class TransientHTTPError(Exception):
    """One failed try that may succeed when repeated (internal)."""

    def __init__(self, reason: str, retry_after: float | None = None):
        super().__init__(reason)
        self.retry_after = retry_after


class DeadlinePassed(TransientHTTPError):
    """A try whose body was still arriving at its deadline (internal): retried once only."""


_TRANSIENT_EXC = (
    requests.exceptions.ConnectionError,
    requests.exceptions.Timeout,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
    urllib3.exceptions.HTTPError,
)


def new_session() -> requests.Session:
    """A requests session without urllib3-level retries (the policy here does them)."""
    s = requests.Session()
    s.headers["User-Agent"] = "minewatch (+https://github.com/minewatch)"
    return s


_local = threading.local()


def session() -> requests.Session:
    """A per-thread session (sessions are not thread-safe)."""
    s = getattr(_local, "session", None)
    if s is None:
        s = _local.session = new_session()
    return s


def check_hop(first: str, target: str, allow: HostAllowlist | None, what: str) -> None:
    ok = allow.permits(target) if allow is not None else _same_site(first, target)
    if not ok:
        scheme, host, port = origin(target)
        raise RedirectRefused(
            f"{what} {redact(first)} redirected to {redact(target)} (scheme {scheme!r}, host {host!r}, port {port}), "
            f"which is not an allowed host ({allow.describe() if allow is not None else 'same host only'}); "
            "nothing was requested there — check the catalogue, or add the host:port to [search] asset_hosts "
            "if you trust it"
        )


def read_body(resp: requests.Response, deadline: float) -> bytes:
    """The whole body of a streamed response, or TransientHTTPError once ``deadline`` (monotonic) passes."""
    chunks = []
    while True:
        if time.monotonic() > deadline:
            resp.close()
            raise DeadlinePassed("deadline passed while the body was still arriving")
        chunk = resp.raw.read1(65536, decode_content=True)  # returns what has arrived, however little
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def _asked_bytes(headers: dict[str, str] | None) -> int:
    """Bytes a ``Range: bytes=START-END`` header asks for (0 without one)."""
    m = re.fullmatch(r"bytes=(\d+)-(\d+)", (headers or {}).get("Range", "").strip())
    return int(m.group(2)) - int(m.group(1)) + 1 if m else 0


def _one_try(url: str, headers: dict[str, str] | None, policy: RetryPolicy, allow: HostAllowlist | None,
             what: str) -> tuple[requests.Response, bytes]:
    """One GET of ``url`` with its redirects followed by hand, each hop checked before it is requested."""
    deadline = time.monotonic() + policy.deadline_s + _asked_bytes(headers) / policy.min_rate_bps
    target = url
    for _hop in range(policy.max_redirects + 1):
        resp = session().get(target, headers=headers, timeout=policy.timeout_s, allow_redirects=False, stream=True)
        if resp.is_redirect and resp.headers.get("Location"):
            nxt = urljoin(target, resp.headers["Location"])
            resp.close()
            check_hop(url, nxt, allow, what)
            log.debug("%s %s redirected to %s", what, redact(target), redact(nxt))
            target = nxt
            continue
        body = read_body(resp, deadline)
        resp._content = body  # later .content calls return it
        return resp, body
    raise StacError(f"{what} {redact(url)} redirected more than {policy.max_redirects} times; check the URL")


def get(
    url: str,
    *,
    policy: RetryPolicy = DEFAULT_POLICY,
    headers: dict[str, str] | None = None,
    expect_len: int | None = None,
    what: str = "request",
    allow: HostAllowlist | None = None,
) -> requests.Response:
    """GET ``url`` with retries; return a response whose ``content`` is complete.

    Redirects are followed by hand, at most ``policy.max_redirects`` hops: each hop's scheme, host and port
    must be permitted by ``allow`` (default: :func:`current_allowlist`; with none, only ``url``'s own origin)
    before anything is sent there. Each try ends by ``policy.deadline_s``, however slowly the body drips.

    Raises:
        StacError: the server could not be reached, kept failing, or answered 4xx.
        RedirectRefused: a redirect pointed outside the allowlist (no request is made there).
    """
    allow = allow if allow is not None else current_allowlist()
    last = "no try made"
    cut = 0  # tries cut at their deadline
    for attempt in range(1, policy.attempts + 1):
        try:
            resp, body = _one_try(url, headers, policy, allow, what)  # a truncated body raises ChunkedEncodingError
            if resp.status_code in RETRY_STATUSES:
                raise TransientHTTPError(
                    f"HTTP {resp.status_code}", parse_retry_after(resp.headers.get("Retry-After"))
                )
            if resp.status_code in (401, 403):
                raise AccessDeniedError(f"{what} {redact(url)} answered HTTP {resp.status_code} {resp.reason}; "
                                        "the signature may have expired or access is denied", resp.status_code)
            if resp.status_code >= 400:
                raise StacError(
                    f"{what} {redact(url)} answered HTTP {resp.status_code} {resp.reason}; check the URL"
                )
            if expect_len is not None and len(body) != expect_len:
                raise TransientHTTPError(f"short body: {len(body)} of {expect_len} bytes")
            declared = resp.headers.get("Content-Length")
            if declared is not None and declared.isdigit() and int(declared) != len(body) \
                    and not resp.headers.get("Content-Encoding"):
                raise TransientHTTPError(f"truncated body: {len(body)} of {declared} bytes")
            return resp
        except TransientHTTPError as exc:
            last, retry_after = str(exc), exc.retry_after
            cut += isinstance(exc, DeadlinePassed)
        except _TRANSIENT_EXC as exc:
            last, retry_after = f"{exc.__class__.__name__}", None
        if cut >= 2:  # a dripping server: one more try was its chance
            raise StacError(f"{what} {redact(url)} failed: twice the body was still arriving at the deadline "
                            f"({policy.deadline_s:g} s); the server is too slow or stalls on purpose — check the "
                            "network/URL and rerun later (finished work is cached)")
        if attempt < policy.attempts:
            wait = policy.delay(attempt, retry_after)
            log.info("%s %s failed (%s); retry %d/%d in %.1f s", what, redact(url), last, attempt,
                     policy.attempts - 1, wait)
            time.sleep(wait)
    raise StacError(
        f"{what} {redact(url)} failed after {policy.attempts} tries (last: {last}); "
        "the server is unreachable or overloaded: check the network/URL and rerun later (finished work is cached)"
    )


class ByteCounter:
    """Thread-safe tally of bytes and requests fetched over HTTP (for benchmarks and tests)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.bytes = 0
        self.requests = 0

    def add(self, n: int) -> None:
        with self._lock:
            self.bytes += n
            self.requests += 1


#: Process-wide counter of COG bytes fetched by :class:`RangeFile`.
FETCHED = ByteCounter()
