"""HTTP with retries for STAC requests and COG range reads.

One retry policy serves both: exponential backoff on HTTP 5xx, on 429 (honouring ``Retry-After``),
on timeouts, dropped connections and truncated bodies (a body shorter than its ``Content-Length`` or
than the requested range). :class:`RangeFile` is a read-only, seekable file object over an http(s)
URL that fetches byte ranges in aligned blocks and keeps them in memory, so GDAL (through
``rasterio.open(..., opener=...)``) reads only the tiles a window needs, and every byte is counted.

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

from geo.errors import StacError

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
            if resp.status_code >= 400:
                raise StacError(
                    f"{what} {redact(url)} answered HTTP {resp.status_code} {resp.reason}; "
                    + ("the signature may have expired or access is denied" if resp.status_code in (401, 403)
                       else "check the URL")
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


class RangeFile:
    """Read-only seekable file over an http(s) URL, fetched in ``block``-aligned ranges.

    The first request fetches ``head`` bytes (the COG header and tile index live there) and learns
    the file size from ``Content-Range``. Later reads fetch only the missing aligned blocks,
    coalescing neighbours into one request. Fetch errors are kept in :attr:`error` because GDAL
    turns exceptions raised inside ``read`` into a generic I/O error.
    """

    def __init__(self, url: str, *, policy: RetryPolicy = DEFAULT_POLICY, block: int = 16384,
                 head: int = 32768, counter: ByteCounter | None = None):
        self.url, self.policy, self.block = url, policy, block
        self.counter = counter or FETCHED
        self.error: BaseException | None = None
        self._blocks: dict[int, bytes] = {}
        self._pos = 0
        self.size = -1
        self._fetch(0, head)

    # -- fetching ---------------------------------------------------------------------------
    def _fetch(self, start: int, length: int) -> None:
        end = start + length - 1 if self.size < 0 else min(start + length, self.size) - 1
        if end < start:
            return
        expect = None if self.size < 0 else end - start + 1
        try:
            resp = get(self.url, policy=self.policy, headers={"Range": f"bytes={start}-{end}"},
                       expect_len=expect, what="COG read")
        except StacError as exc:
            self.error = exc
            raise
        data = resp.content
        self.counter.add(len(data))
        if resp.status_code == 206:
            total = resp.headers.get("Content-Range", "").rpartition("/")[2]
            if self.size < 0:
                if not total.isdigit():
                    self.error = StacError(f"{redact(self.url)} sent no file size in Content-Range")
                    raise self.error
                self.size = int(total)
                if len(data) != min(end + 1, self.size) - start:
                    self.error = StacError(f"{redact(self.url)}: short range answer; retry later")
                    raise self.error
        elif resp.status_code == 200:  # server ignores Range: whole file came back
            self.size = len(data)
            start = 0
        for off in range(0, len(data), self.block):
            chunk = data[off:off + self.block]
            if len(chunk) == self.block or start + off + len(chunk) == self.size:
                self._blocks[(start + off) // self.block] = chunk

    def _ensure(self, first: int, last: int) -> None:
        missing = [b for b in range(first, last + 1) if b not in self._blocks]
        while missing:
            run_start = run_end = missing.pop(0)
            while missing and missing[0] == run_end + 1:
                run_end = missing.pop(0)
            self._fetch(run_start * self.block, (run_end - run_start + 1) * self.block)

    # -- file protocol ----------------------------------------------------------------------
    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            n = self.size - self._pos
        n = max(0, min(n, self.size - self._pos))
        if n == 0:
            return b""
        first, last = self._pos // self.block, (self._pos + n - 1) // self.block
        self._ensure(first, last)
        buf = b"".join(self._blocks[b] for b in range(first, last + 1))
        off = self._pos - first * self.block
        out = buf[off:off + n]
        self._pos += len(out)
        return out

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self._pos, 2: self.size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def tell(self) -> int:
        return self._pos

    def close(self) -> None:
        """GDAL may reopen the same object; blocks stay until it is garbage-collected."""

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def __enter__(self) -> "RangeFile":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
