"""Real servers on 127.0.0.1 for tests and benchmarks.

* :class:`RangeServer` — ``python -m RangeHTTPServer`` serving a folder with HTTP Range support.
* :class:`RustacServer` — ``rustac serve`` (an in-memory STAC API) loaded from an ItemCollection file.
* :class:`FaultProxy` — an in-process HTTP proxy in front of either, injecting faults on demand
  (500/503, 429 with Retry-After, stalls, truncated bodies, dropped connections), counting bytes, and
  optionally standing in for the Planetary Computer SAS token endpoint (and enforcing the token).

Every server binds an ephemeral port chosen by the OS and is stopped by its context manager.
"""

from __future__ import annotations

import http.client
import json
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import datetime as dt
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float = 20.0, proc: subprocess.Popen | None = None) -> None:
    """Poll ``url`` until it answers (any status) or fail."""
    u = urlsplit(url)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
            raise RuntimeError(f"server exited with {proc.returncode}: {err[-2000:]}")
        try:
            c = http.client.HTTPConnection(u.hostname, u.port, timeout=1)
            c.request("GET", u.path or "/")
            c.getresponse().read()
            c.close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"server at {url} did not answer within {timeout} s")


def rustac_binary() -> str | None:
    cand = Path(sys.executable).parent / "rustac"
    return str(cand) if cand.exists() else shutil.which("rustac")


class _Proc:
    proc: subprocess.Popen

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


class RangeServer(_Proc):
    """``python -m RangeHTTPServer`` on 127.0.0.1 serving ``root``."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "RangeHTTPServer", str(self.port), "--bind", "127.0.0.1"],
            cwd=self.root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        wait_http(self.url + "/", proc=self.proc)


class RustacServer(_Proc):
    """``rustac serve`` on 127.0.0.1 loaded with ``hrefs`` (ItemCollection/collection JSON files).

    ``public_url`` is the address the API writes into its links (e.g. a :class:`FaultProxy` in front).
    """

    def __init__(self, hrefs: list[Path], *, public_url: str | None = None, port: int | None = None):
        exe = rustac_binary()
        if exe is None:
            raise FileNotFoundError("rustac binary not found (pip install rustac)")
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        addr = public_url or self.url
        self.proc = subprocess.Popen(
            [exe, "serve", "--addr", addr, "--bind", f"127.0.0.1:{self.port}", "--create-collections",
             *map(str, hrefs)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        wait_http(self.url + "/", proc=self.proc)


class FaultProxy:
    """HTTP proxy on 127.0.0.1 in front of ``upstream`` that injects faults.

    Faults (``inject(kind, times=1, path=regex, **kw)``), applied to the next matching requests:
      ``"status"`` (``code=500``), ``"429"`` (``retry_after=seconds``), ``"stall"`` (``seconds=``;
      then answer normally), ``"truncate"`` (send the headers and half the body, then close),
      ``"drop"`` (close the connection without answering).
    ``fail_all(kind, **kw)`` applies a fault to every request until ``clear()``.
    With ``sas_token`` set it serves ``/api/sas/v1/token/<collection>`` itself and answers 403 to
    any other request whose query lacks that token, like Azure Blob Storage.
    """

    def __init__(self, upstream: str, *, sas_token: str | None = None, token_ttl_s: float = 3600):
        u = urlsplit(upstream)
        self.up_host, self.up_port = u.hostname, u.port
        self.sas_token = sas_token
        self.token_ttl_s = token_ttl_s
        self.token_requests = 0
        self._rules: list[dict] = []
        self._always: dict | None = None
        self._lock = threading.Lock()
        self.log: list[tuple[str, str, int | str]] = []
        self.bytes_sent = 0
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):  # quiet
                pass

            def do_GET(self):
                proxy._handle(self)

            do_POST = do_GET
            do_HEAD = do_GET

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    # -- control ----------------------------------------------------------------------------
    def inject(self, kind: str, *, times: int = 1, path: str | None = None, **kw) -> None:
        with self._lock:
            self._rules.append({"kind": kind, "left": times, "path": re.compile(path) if path else None, **kw})

    def fail_all(self, kind: str, **kw) -> None:
        with self._lock:
            self._always = {"kind": kind, **kw}

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()
            self._always = None

    def reset_counts(self) -> None:
        with self._lock:
            self.log.clear()
            self.bytes_sent = 0

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _pick(self, path: str) -> dict | None:
        with self._lock:
            if self._always:
                return self._always
            for r in self._rules:
                if r["left"] > 0 and (r["path"] is None or r["path"].search(path)):
                    r["left"] -= 1
                    return r
        return None

    # -- serving ----------------------------------------------------------------------------
    def _record(self, h, status) -> None:
        with self._lock:
            self.log.append((h.command, h.path, status))

    def _send(self, h, status: int, headers: dict, body: bytes, *, truncate: bool = False) -> None:
        h.send_response(status)
        for k, v in headers.items():
            h.send_header(k, v)
        h.send_header("Content-Length", str(len(body)))
        if truncate:
            h.send_header("Connection", "close")
        h.end_headers()
        payload = body[: len(body) // 2] if truncate else body
        if h.command != "HEAD":
            h.wfile.write(payload)
            with self._lock:
                self.bytes_sent += len(payload)
        if truncate:
            h.wfile.flush()
            h.close_connection = True
            h.connection.shutdown(socket.SHUT_RDWR)

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        req_body = h.rfile.read(length) if length else None
        split = urlsplit(h.path)
        try:
            if self.sas_token and split.path.startswith("/api/sas/v1/token/"):
                with self._lock:
                    self.token_requests += 1
                expiry = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=self.token_ttl_s)
                body = json.dumps({"msft:expiry": expiry.strftime("%Y-%m-%dT%H:%M:%SZ"),
                                   "token": self.sas_token}).encode()
                self._record(h, 200)
                return self._send(h, 200, {"Content-Type": "application/json"}, body)
            rule = self._pick(h.path)
            kind = rule["kind"] if rule else None
            if kind == "drop":
                self._record(h, "drop")
                h.close_connection = True
                h.connection.shutdown(socket.SHUT_RDWR)
                return
            if kind == "status":
                self._record(h, rule.get("code", 500))
                return self._send(h, rule.get("code", 500), {"Content-Type": "text/plain"}, b"injected failure")
            if kind == "429":
                self._record(h, 429)
                return self._send(h, 429, {"Retry-After": str(rule.get("retry_after", 1))}, b"slow down")
            if kind == "stall":
                time.sleep(rule.get("seconds", 2.0))
            if self.sas_token and parse_qs(split.query).get("sig") != parse_qs(self.sas_token).get("sig"):
                self._record(h, 403)
                return self._send(h, 403, {"Content-Type": "application/xml"},
                                  b"<Error><Code>AuthenticationFailed</Code></Error>")
            status, headers, body = self._forward(h, req_body)
            self._record(h, status if kind != "truncate" else "truncate")
            self._send(h, status, headers, body, truncate=(kind == "truncate"))
        except (BrokenPipeError, ConnectionResetError, OSError):
            h.close_connection = True

    def _forward(self, h, req_body):
        c = http.client.HTTPConnection(self.up_host, self.up_port, timeout=30)
        headers = {k: v for k, v in h.headers.items() if k.lower() in ("range", "content-type", "accept")}
        c.request(h.command, h.path, body=req_body, headers=headers)
        r = c.getresponse()
        body = r.read()
        keep = {k: v for k, v in r.getheaders()
                if k.lower() in ("content-type", "content-range", "accept-ranges", "last-modified")}
        c.close()
        return r.status, keep, body
