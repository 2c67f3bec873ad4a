"""COG range reads over HTTP: a read-only, seekable file object for GDAL that fetches only what a window needs.

:class:`RangeFile` wraps an http(s) URL for ``rasterio.open(..., opener=...)``: it reads only the tiles a
window needs, merging nearby tiles into few range requests (:func:`plan_ranges`) sent in parallel on one
process-wide pool (:func:`range_pool`), keeps each file's header for the next read of it (:data:`HEADERS`, by
URL without query string), and counts every byte. Retries, timeouts and redaction are :mod:`geo.sources.remote`'s.
"""

from __future__ import annotations

import bisect
import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from functools import partial
from typing import Any

import requests

from geo.errors import StacError
from geo.sources.remote import DEFAULT_POLICY, FETCHED, ByteCounter, RetryPolicy, get, redact

log = logging.getLogger(__name__)

#: Byte ranges at most this far apart go in one request: the gap costs less than another round trip.
MERGE_GAP = 64 * 1024
#: No range request asks for more than this; longer runs are split and their parts sent in parallel.
MAX_REQUEST = 16 * 1024 * 1024
#: Metadata bytes (header, IFDs, tile index) kept per file in :data:`HEADERS`.
MAX_HEADER = 1024 * 1024
#: COG range requests in flight at once in a process unless :func:`use_range_threads` says otherwise
#: (the default ``io_threads``).
DEFAULT_RANGE_THREADS = 4


class RemoteFileChanged(StacError):
    """A file's size or ETag/Last-Modified differs from the cached header's: the header is dropped (internal:
    :func:`geo.sources.load.read_window` reads the file again)."""


def plan_ranges(offsets: list[int], sizes: list[int], *, gap: int = MERGE_GAP,
                max_len: int = MAX_REQUEST) -> list[tuple[int, int]]:
    """Spans ``(start, end)`` (end exclusive) that cover the byte ranges ``[offset, offset + size)``.

    Ranges are sorted; one joins the span before it when the gap between them is at most ``gap`` bytes
    (overlapping ranges have no gap) and the span stays within ``max_len`` bytes.
    """
    spans: list[list[int]] = []
    for start, end in sorted((o, o + n) for o, n in zip(offsets, sizes) if n > 0):
        if spans and start - spans[-1][1] <= gap and max(end, spans[-1][1]) - spans[-1][0] <= max_len:
            spans[-1][1] = max(end, spans[-1][1])
        else:
            spans.append([start, end])
    return [(s, e) for s, e in spans]


_pool_lock = threading.Lock()
_pool_threads = DEFAULT_RANGE_THREADS
_pool: tuple[int, int, ThreadPoolExecutor, threading.Semaphore] | None = None  # (pid, threads, pool, slots)


def use_range_threads(n: int) -> None:
    """Let at most ``n`` COG range requests be in flight at once in this process (``io_threads``)."""
    global _pool_threads
    with _pool_lock:
        _pool_threads = max(1, int(n))


def range_pool() -> tuple[ThreadPoolExecutor, threading.Semaphore]:
    """The process-wide pool for parallel COG range requests (its threads keep their HTTP connections) and
    the slots every range request takes, in the pool or not: at most :func:`use_range_threads` in flight.

    A pool of another size or of a parent process is replaced; the old one finishes what it was given and
    its threads exit once it is no longer referenced.
    """
    global _pool
    with _pool_lock:
        if _pool is None or _pool[0] != os.getpid() or _pool[1] != _pool_threads:
            _pool = (os.getpid(), _pool_threads, ThreadPoolExecutor(_pool_threads, thread_name_prefix="cog-range"),
                     threading.Semaphore(_pool_threads))
        return _pool[2], _pool[3]


def _run_all(calls: list[Callable[[], Any]]) -> list[Any]:
    """Results of ``calls``: one runs in this thread, more in parallel on :func:`range_pool`; waits for all
    of them, then raises the first error."""
    pool, slots = range_pool()

    def in_slot(call: Callable[[], Any]) -> Any:
        with slots:
            return call()

    if len(calls) <= 1:
        return [in_slot(c) for c in calls]
    futures = [pool.submit(in_slot, c) for c in calls]
    wait(futures)
    return [f.result() for f in futures]


@dataclass(frozen=True)
class CogHeader:
    """What one read learnt about a file that the next read of it can reuse.

    Attributes:
        size: file size in bytes.
        validator: the ``ETag`` (else ``Last-Modified``) the server sent with it, if any.
        block: block size of ``blocks``.
        blocks: block index → bytes GDAL read as metadata (header, IFDs, tile index).
    """

    size: int
    validator: str | None
    block: int
    blocks: dict[int, bytes]

    @property
    def nbytes(self) -> int:
        return sum(len(b) for b in self.blocks.values())


class HeaderCache:
    """Least-recently-used :class:`CogHeader` per file, keyed by URL without query string (a re-signed URL
    is the same file), at most ``max_bytes`` of blocks and ``max_entries`` files in all. Thread-safe."""

    def __init__(self, max_bytes: int = 64 * 1024 * 1024, max_entries: int = 4096):
        self.max_bytes, self.max_entries = max_bytes, max_entries
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, CogHeader] = OrderedDict()
        self._bytes = 0

    def get(self, url: str) -> CogHeader | None:
        with self._lock:
            hdr = self._entries.get(redact(url))
            if hdr is not None:
                self._entries.move_to_end(redact(url))
            return hdr

    def put(self, url: str, hdr: CogHeader) -> None:
        with self._lock:
            self._drop(redact(url))
            self._entries[redact(url)] = hdr
            self._bytes += hdr.nbytes
            while self._entries and (self._bytes > self.max_bytes or len(self._entries) > self.max_entries):
                self._drop(next(iter(self._entries)))

    def forget(self, url: str) -> None:
        with self._lock:
            self._drop(redact(url))

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    def _drop(self, key: str) -> None:
        hdr = self._entries.pop(key, None)
        if hdr is not None:
            self._bytes -= hdr.nbytes


#: Process-wide header cache of :class:`RangeFile`.
HEADERS = HeaderCache()


def clear_header_cache() -> None:
    """Forget every cached COG header (the next read of each file fetches its header again)."""
    HEADERS.clear()


class RangeFile:
    """Read-only seekable file over an http(s) URL, for GDAL through ``rasterio.open(..., opener=...)``.

    :meth:`prefetch` fetches the byte ranges of a window's tiles at once, merged by :func:`plan_ranges`
    into few requests sent in parallel on :func:`range_pool`; GDAL's tile reads are then served from
    memory. Other reads (header, IFDs, tile index, tiles not prefetched) are served from ``block``-aligned
    ranges kept in memory: the first request fetches ``head`` bytes and learns the file size from
    ``Content-Range``; a later miss fetches at least ``head`` bytes more. Every request goes through
    :func:`get` (retries).

    With a ``cache`` (default :data:`HEADERS`) a file whose header an earlier read of the same URL (any
    query string) left there opens without a request; its tiles are still fetched, and those requests
    check that the file is unchanged (size, ETag/Last-Modified; else :class:`RemoteFileChanged`).
    :meth:`close` puts the header back. Fetch errors are kept in :attr:`error` because GDAL turns
    exceptions raised inside ``read`` into a generic I/O error.
    """

    def __init__(self, url: str, *, policy: RetryPolicy = DEFAULT_POLICY, block: int = 16384,
                 head: int = 32768, counter: ByteCounter | None = None, cache: HeaderCache | None = HEADERS):
        self.url, self.policy, self.block, self.head = url, policy, block, head
        self.counter = counter or FETCHED
        self.cache = cache
        self.error: BaseException | None = None
        self._blocks: dict[int, bytes] = {}
        self._pos = 0
        self.size = -1
        self.validator: str | None = None
        self._spans: list[tuple[int, bytes]] = []  # prefetched (start, bytes), sorted by start
        self._meta: set[int] | None = None  # blocks read before the first prefetch: the header
        #: True when the header came from the cache (no request made for it)
        self.cached = self._from_cache()
        if not self.cached:
            self._store(*_run_all([partial(self._fetch, 0, head)])[0])

    # -- fetching ---------------------------------------------------------------------------
    def _from_cache(self) -> bool:
        hdr = self.cache.get(self.url) if self.cache is not None else None
        if hdr is None or hdr.block != self.block:
            return False
        self.size, self.validator, self._blocks = hdr.size, hdr.validator, dict(hdr.blocks)
        return True

    def _fetch(self, start: int, length: int) -> tuple[int, bytes]:
        """GET ``length`` bytes at ``start`` (clipped to the file); returns ``(offset, bytes)``, offset 0
        when the server ignored ``Range`` and sent the whole file."""
        end = start + length - 1 if self.size < 0 else min(start + length, self.size) - 1
        if end < start:
            return start, b""
        expect = None if self.size < 0 else end - start + 1
        try:
            resp = get(self.url, policy=self.policy, headers={"Range": f"bytes={start}-{end}"},
                       expect_len=expect, what="COG read")
            self.counter.add(len(resp.content))
            if resp.status_code == 200:  # server ignores Range: whole file came back
                self.size = len(resp.content)
                return 0, resp.content
            self._check_file(resp, start, end)
        except StacError as exc:
            self.error = exc
            raise
        return start, resp.content

    def _check_file(self, resp: requests.Response, start: int, end: int) -> None:
        """Learn the size (first request) or check that the file is the one the cached header describes."""
        crange = resp.headers.get("Content-Range", "")
        total = crange.rpartition("/")[2]
        first = crange.removeprefix("bytes").strip().partition("-")[0]
        if not first.isdigit() or int(first) != start:
            raise StacError(f"{redact(self.url)} answered a range request for bytes {start}-{end} with "
                            f"Content-Range {crange[:60]!r}; the server mishandles range requests — use another "
                            "host or mirror for these COGs")
        validator = resp.headers.get("ETag") or resp.headers.get("Last-Modified")
        if self.size < 0:
            if not total.isdigit():
                raise StacError(f"{redact(self.url)} sent no file size in Content-Range")
            self.size, self.validator = int(total), validator
            if len(resp.content) != min(end + 1, self.size) - start:
                raise StacError(f"{redact(self.url)}: short range answer; retry later")
        elif self.cached and ((total.isdigit() and int(total) != self.size)
                              or (validator and self.validator and validator != self.validator)):
            if self.cache is not None:
                self.cache.forget(self.url)
            raise RemoteFileChanged(f"{redact(self.url)} changed on the server since its header was read; "
                                    "read it again")

    def _store(self, start: int, data: bytes) -> None:
        for off in range(0, len(data), self.block):
            chunk = data[off:off + self.block]
            if len(chunk) == self.block or start + off + len(chunk) == self.size:
                self._blocks[(start + off) // self.block] = chunk

    def _ensure(self, first: int, last: int) -> None:
        """Fetch the missing blocks ``first..last``, each run of them read ahead to ``head`` bytes."""
        runs, b, ahead = [], first, max(1, self.head // self.block)
        while b <= last:
            if b in self._blocks:
                b += 1
                continue
            start = b
            while (b <= last or b < start + ahead) and b not in self._blocks and b * self.block < self.size:
                b += 1
            runs.append(partial(self._fetch, start * self.block, (b - start) * self.block))
        for start, data in _run_all(runs):
            self._store(start, data)

    def _fetch_spans(self, spans: list[tuple[int, int]]) -> list[tuple[int, bytes]]:
        """``(start, bytes)`` of each span, fetched in parallel parts of at most :data:`MAX_REQUEST` bytes."""
        parts = [(s, min(s + MAX_REQUEST, e)) for s0, e in spans for s in range(s0, e, MAX_REQUEST)]
        got = dict(_run_all([partial(self._fetch, s, e - s) for s, e in parts]))
        return [(s0, b"".join(got[s] for s in range(s0, e, MAX_REQUEST))) for s0, e in spans]

    def _held(self, offset: int, size: int) -> bool:
        """True when blocks this object fetched itself (not the cache's) hold these bytes."""
        return not self.cached and all(b in self._blocks for b in range(offset // self.block,
                                                                        (offset + size - 1) // self.block + 1))

    def prefetch(self, offsets: list[int], sizes: list[int]) -> None:
        """Fetch the byte ranges ``[offset, offset + size)`` (a window's tiles) now: merged into few requests,
        sent in parallel. Later reads inside them are served from memory."""
        if self._meta is None:
            self._meta = set(self._blocks)
        todo = [(o, n) for o, n in zip(offsets, sizes) if n > 0 and not self._held(o, n)]
        spans = self._fetch_spans(plan_ranges([o for o, _ in todo], [n for _, n in todo]))
        self._spans = sorted(self._spans + spans, key=lambda sp: sp[0])

    def _from_spans(self, pos: int, n: int) -> bytes | None:
        i = bisect.bisect_right(self._spans, pos, key=lambda sp: sp[0]) - 1
        if i < 0 or pos + n > self._spans[i][0] + len(self._spans[i][1]):
            return None
        start, data = self._spans[i]
        return data[pos - start:pos - start + n]

    def _header(self) -> CogHeader:
        """This file's header for the cache: its size, validator and first metadata blocks."""
        keep, total = {}, 0
        for b in sorted(self._blocks if self._meta is None else self._meta):
            total += len(self._blocks[b])
            if total > MAX_HEADER:
                break
            keep[b] = self._blocks[b]
        return CogHeader(self.size, self.validator, self.block, keep)

    # -- file protocol ----------------------------------------------------------------------
    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            n = self.size - self._pos
        n = max(0, min(n, self.size - self._pos))
        if n == 0:
            return b""
        out = self._from_spans(self._pos, n)
        if out is not None:
            self._pos += n
            return out
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
        """Put the header in the cache. GDAL may reopen the same object: blocks stay until it is garbage-collected."""
        if self.cache is not None and self.error is None and self.size >= 0:
            self.cache.put(self.url, self._header())

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def __enter__(self) -> "RangeFile":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class GdalFileView:
    """A :class:`RangeFile` as GDAL sees it: a failed fetch (kept in ``error``, re-raised by :func:`geo.sources.load.read_window`)
    ends ``read`` with no bytes, so GDAL fails the read cleanly. Raised inside rasterio's read callback, the
    exception would be printed as a traceback on stderr and left pending. Everything else is the RangeFile's."""

    def __init__(self, rf: RangeFile):
        self._rf = rf

    def read(self, n: int = -1) -> bytes:
        try:
            return self._rf.read(n)
        except StacError:
            return b""

    def __getattr__(self, name: str):
        return getattr(self._rf, name)

    def __enter__(self) -> "GdalFileView":
        return self

    def __exit__(self, *exc) -> None:
        self._rf.close()
