"""HTTP with retries for STAC requests and COG range reads.

One retry policy serves both: exponential backoff on HTTP 5xx, on 429 (honouring ``Retry-After``),
on timeouts, dropped connections and truncated bodies (a body shorter than its ``Content-Length`` or
than the requested range). COG range reads built on it live in :mod:`geo.sources.cog_ranges`.

URLs are logged without their query string: SAS tokens and other signatures never reach the logs.
"""

from __future__ import annotations

import email.utils
import logging
import random
import re
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

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
    """

    attempts: int = 5
    backoff_s: float = 0.5
    max_backoff_s: float = 30.0
    timeout_s: float = 30.0

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


class TransientHTTPError(Exception):
    """One failed try that may succeed when repeated (internal)."""

    def __init__(self, reason: str, retry_after: float | None = None):
        super().__init__(reason)
        self.retry_after = retry_after


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


def get(
    url: str,
    *,
    policy: RetryPolicy = DEFAULT_POLICY,
    headers: dict[str, str] | None = None,
    expect_len: int | None = None,
    what: str = "request",
) -> requests.Response:
    """GET ``url`` with retries; return a response whose ``content`` is complete.

    Raises:
        StacError: the server could not be reached, kept failing, or answered 4xx.
    """
    last = "no try made"
    for attempt in range(1, policy.attempts + 1):
        try:
            resp = session().get(url, headers=headers, timeout=policy.timeout_s)
            body = resp.content  # reads the body; a truncated one raises ChunkedEncodingError
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
        except _TRANSIENT_EXC as exc:
            last, retry_after = f"{exc.__class__.__name__}", None
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
