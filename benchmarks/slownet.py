"""A loopback "internet" for the read benchmarks: an HTTP proxy that adds latency and caps bandwidth.

:class:`SlowProxy` stands in front of a range-capable file server (``tests/servers.py``'s
:class:`~servers.RangeServer`) on 127.0.0.1 and makes it behave like an object store far away:

* every request waits ``latency_ms`` (drawn uniformly from the range, seeded) before its first byte, as a
  round trip plus the store's time to first byte;
* a request on a new connection waits one latency more (the TCP handshake; TLS would add more), so
  readers that keep their connections are not penalised for it;
* response bodies share one ``mbit_s`` token bucket (all connections together: the machine's link),
  sent in 16 KiB slices.

It keeps one upstream connection per client connection (HTTP/1.1 keep-alive both sides), counts requests
and body bytes, and forwards only ``Range`` (the store answers 206 with ``Content-Range``, like S3).
"""

from __future__ import annotations

import http.client
import random
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

SLICE = 16 * 1024


class _Bucket:
    """Token bucket shared by every connection: ``rate`` bytes/s, bursts of at most ``burst`` bytes."""

    def __init__(self, rate: float, burst: float):
        self.rate, self.burst = rate, burst
        self.tokens, self.t = burst, time.monotonic()
        self.lock = threading.Lock()

    def take(self, n: int) -> None:
        if self.rate <= 0:
            return
        with self.lock:
            now = time.monotonic()
            self.tokens = min(self.burst, self.tokens + (now - self.t) * self.rate)
            self.t = now
            self.tokens -= n
            wait = -self.tokens / self.rate if self.tokens < 0 else 0.0
        if wait > 0:
            time.sleep(wait)


class SlowProxy:
    """HTTP proxy on 127.0.0.1 adding ``latency_ms=(lo, hi)`` per request and an ``mbit_s`` bandwidth cap.

    Attributes:
        url: the proxy's base URL. requests, bytes_sent, connections: counters (:meth:`reset_counts`).
    """

    def __init__(self, upstream: str, *, latency_ms: tuple[float, float] = (50.0, 100.0), mbit_s: float = 200.0,
                 seed: int = 0):
        u = urlsplit(upstream)
        self.up = (u.hostname, u.port)
        self.latency_ms = latency_ms
        self.bucket = _Bucket(mbit_s * 1e6 / 8, burst=256 * 1024)
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self.reset_counts()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def setup(self):
                super().setup()
                self.fresh = True
                self.upstream = None
                with proxy._lock:
                    proxy.connections += 1

            def finish(self):
                if self.upstream is not None:
                    self.upstream.close()
                super().finish()

            def do_GET(self):
                proxy._handle(self)

            do_HEAD = do_GET

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.request_queue_size = 128
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def reset_counts(self) -> None:
        with self._lock:
            self.requests = self.bytes_sent = self.connections = 0
            self.log: list[tuple[str, str, str]] = []  # (method, path, Range)

    def _delay(self, fresh: bool) -> float:
        with self._lock:
            d = self._rng.uniform(*self.latency_ms) / 1000
            return 2 * d if fresh else d

    def _handle(self, h) -> None:
        with self._lock:
            self.requests += 1
            self.log.append((h.command, h.path, h.headers.get("Range", "")))
        time.sleep(self._delay(h.fresh))
        h.fresh = False
        headers = {k: v for k, v in h.headers.items() if k.lower() == "range"}
        for attempt in (1, 2):  # an idle upstream connection may have been closed: reconnect once
            try:
                if h.upstream is None:
                    h.upstream = http.client.HTTPConnection(*self.up, timeout=60)
                h.upstream.request(h.command, h.path, headers=headers)
                r = h.upstream.getresponse()
                body = r.read()
                break
            except (http.client.HTTPException, OSError):
                if h.upstream is not None:
                    h.upstream.close()
                h.upstream = None
                if attempt == 2:
                    h.send_error(502)
                    return
        try:
            h.send_response(r.status)
            for k, v in r.getheaders():
                if k.lower() in ("content-type", "content-range", "accept-ranges", "last-modified", "etag"):
                    h.send_header(k, v)
            h.send_header("Content-Length", r.getheader("Content-Length", str(len(body))))
            h.end_headers()
            if h.command != "HEAD":
                for i in range(0, len(body), SLICE):
                    part = body[i:i + SLICE]
                    self.bucket.take(len(part))
                    h.wfile.write(part)
                with self._lock:
                    self.bytes_sent += len(body)
        except (BrokenPipeError, ConnectionResetError, socket.timeout, OSError):
            h.close_connection = True

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> "SlowProxy":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
