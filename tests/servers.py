"""Real servers on 127.0.0.1 for tests and benchmarks.

* :class:`RangeServer` — ``python -m RangeHTTPServer`` serving a folder with HTTP Range support.
* :class:`RustacServer` — ``rustac serve`` (an in-memory STAC API) loaded from an ItemCollection file.
* :class:`FaultProxy` — an in-process HTTP proxy in front of either, injecting faults on demand
  (500/503, 429 with Retry-After, stalls, truncated bodies, dropped connections), counting bytes, and
  optionally standing in for the Planetary Computer SAS token endpoint and Azure Blob Storage's check of
  the token (:class:`SasTokens`: numbered tokens with expiries you set, rotation, permanent refusal).

Every server binds an ephemeral port chosen by the OS and is stopped by its context manager.
"""

from __future__ import annotations

import base64
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
from urllib.parse import parse_qs, quote, urlsplit


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


SAS_TOKEN = "st=2024-01-01T00%3A00%3A00Z&se=2099-01-01T00%3A00%3A00Z&sp=rl&sv=2021-06-08&sr=c&sig=c2VjcmV0LXNpZw%3D%3D"
#: base64 of "secret": in every token :class:`SasTokens` issues, so tests can look for any of them in logs and files.
SECRET_MARK = "c2VjcmV0"


def sas_token_n(n: int) -> str:
    """The ``n``-th token :class:`SasTokens` issues (token 1 is :data:`SAS_TOKEN`); each holds :data:`SECRET_MARK`."""
    sig = base64.b64encode(b"secret-sig" + (f"-{n}".encode() if n > 1 else b"")).decode()
    return SAS_TOKEN.replace("c2VjcmV0LXNpZw%3D%3D", quote(sig, safe=""))


class SasTokens:
    """The Planetary Computer token endpoint and the blob store's check of its tokens, in one object.

    ``issue()`` hands out token 1, 2, 3, ... (:func:`sas_token_n`), each valid for the next entry of ``ttls_s``
    (popped), else ``ttl_s`` seconds; a negative TTL issues a token that is already expired. ``accepts(query)``
    is True for an issued token that has not expired and was not revoked. Controls: ``revoke()`` invalidates
    every token issued so far (a key rotation); ``revoke_after = N`` does so once, after N accepted reads (a
    rotation mid-run); ``refuse_all = True`` refuses every token. Counters: ``requests`` (token requests),
    ``accepted``, ``refused`` (reads).
    """

    def __init__(self, ttl_s: float = 3600.0):
        self.ttl_s = ttl_s
        self._lock = threading.Lock()
        self._issued: dict[str, float] = {}  # sig -> expiry (epoch seconds)
        self._n = 0
        self.reset()
        self.reset_counts()

    def reset(self) -> None:
        """Back to plain service: no scheduled TTLs, rotation or refusal (issued tokens stay valid)."""
        with self._lock:
            self.ttls_s: list[float] = []
            self.revoke_after: int | None = None
            self.refuse_all = False

    def reset_counts(self) -> None:
        with self._lock:
            self.requests = self.accepted = self.refused = 0

    def issue(self) -> bytes:
        with self._lock:
            self._n += 1
            self.requests += 1
            ttl = self.ttls_s.pop(0) if self.ttls_s else self.ttl_s
            token = sas_token_n(self._n)
            expiry = time.time() + ttl
            self._issued[parse_qs(token)["sig"][0]] = expiry
        when = dt.datetime.fromtimestamp(expiry, dt.timezone.utc)
        return json.dumps({"msft:expiry": when.strftime("%Y-%m-%dT%H:%M:%SZ"), "token": token}).encode()

    def revoke(self) -> None:
        with self._lock:
            self._issued = {sig: 0.0 for sig in self._issued}

    def accepts(self, query: str) -> bool:
        sig = (parse_qs(query).get("sig") or [""])[0]
        with self._lock:
            ok = not self.refuse_all and self._issued.get(sig, 0.0) > time.time()
            if not ok:
                self.refused += 1
                return False
            self.accepted += 1
            if self.revoke_after is not None and self.accepted >= self.revoke_after:
                self.revoke_after = None
                self._issued = {s: 0.0 for s in self._issued}  # this read still succeeds, the next ones do not
            return True


class FaultProxy:
    """HTTP proxy on 127.0.0.1 in front of ``upstream`` that injects faults.

    Faults (``inject(kind, times=1, path=regex, **kw)``), applied to the next matching requests:
      ``"status"`` (``code=500``), ``"429"`` (``retry_after=seconds``), ``"stall"`` (say nothing for
      ``seconds=``, then hang up), ``"truncate"`` (send the headers and half the body, then close),
      ``"drop"`` (close the connection without answering).
    ``fail_all(kind, **kw)`` applies a fault to every request until ``clear()``.
    With ``tokens`` (a :class:`SasTokens`) it serves ``/api/sas/v1/token/<collection>`` itself and answers
    403 to any other request whose query holds no valid token, like Azure Blob Storage.
    """

    def __init__(self, upstream: str, *, tokens: SasTokens | None = None):
        u = urlsplit(upstream)
        #: conformance URIs appended to the landing page's ``conformsTo`` (to pose as a richer API)
        self.extra_conformance: list[str] = []
        #: JSON bodies of POST requests, in order
        self.bodies: list[dict] = []
        self.up_host, self.up_port = u.hostname, u.port
        self.tokens = tokens
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
        if self.tokens:
            self.tokens.reset()

    @property
    def token_requests(self) -> int:
        return self.tokens.requests if self.tokens else 0

    def reset_counts(self) -> None:
        with self._lock:
            self.log.clear()
            self.bodies.clear()
            self.bytes_sent = 0
        if self.tokens:
            self.tokens.reset_counts()

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
        length = str(len(body))
        for k, v in headers.items():
            if k.lower() == "content-length":
                length = v if h.command == "HEAD" else length  # HEAD: the size of the GET body
                continue
            h.send_header(k, v)
        h.send_header("Content-Length", length)
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
        if req_body:
            try:
                with self._lock:
                    self.bodies.append(json.loads(req_body))
            except ValueError:
                pass
        split = urlsplit(h.path)
        try:
            if self.tokens and split.path.startswith("/api/sas/v1/token/"):
                self._record(h, 200)
                return self._send(h, 200, {"Content-Type": "application/json"}, self.tokens.issue())
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
            if kind == "stall":  # hang past the client's timeout, then hang up
                self._record(h, "stall")
                time.sleep(rule.get("seconds", 2.0))
                h.close_connection = True
                return
            if self.tokens and not self.tokens.accepts(split.query):
                self._record(h, 403)
                return self._send(h, 403, {"Content-Type": "application/xml"},
                                  b"<Error><Code>AuthenticationFailed</Code></Error>")
            status, headers, body = self._forward(h, req_body)
            if self.extra_conformance and split.path in ("", "/") and status == 200:
                doc = json.loads(body)
                doc["conformsTo"] = doc.get("conformsTo", []) + self.extra_conformance
                body = json.dumps(doc).encode()
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
                if k.lower() in ("content-type", "content-range", "accept-ranges", "last-modified", "content-length")}
        c.close()
        return r.status, keep, body


# -- a whole local "cloud": COGs, file servers, two STAC APIs ------------------------------------

class LocalCloud:
    """COGs of :func:`s2fixtures.default_scenes` behind real servers on 127.0.0.1.

    Attributes:
        root: folder of COGs (also holds the item files).
        files: FaultProxy → RangeServer for Earth Search-style hrefs.
        pc_files: FaultProxy → RangeServer that demands a valid SAS token (Azure Blob stand-in) and
            serves the token endpoint at ``/api/sas/v1/token/<collection>`` (``pc_files.tokens``).
        es_api / pc_api: FaultProxy → ``rustac serve`` with Earth Search / Planetary Computer items.
        es_items_local: ItemCollection JSON with Earth Search items and absolute file hrefs.
    """

    def __init__(self, root: Path):
        import s2fixtures as fx

        self.root = Path(root)
        self.paths = [fx.write_rasters(self.root, sc) for sc in fx.default_scenes()]
        self._stack = []
        self.range = self._keep(RangeServer(self.root))
        self.files = self._keep(FaultProxy(self.range.url))
        self.pc_files = self._keep(FaultProxy(self.range.url, tokens=SasTokens()))

        def rel(p):
            return str(p.relative_to(self.root))

        scenes = fx.default_scenes()
        es_http = [fx.make_item(sc, {b: f"{self.files.url}/{rel(p)}" for b, p in ps.items()})
                   for sc, ps in zip(scenes, self.paths)]
        pc_http = [fx.make_item(sc, {b: f"{self.pc_files.url}/{rel(p)}" for b, p in ps.items()}, style="pc")
                   for sc, ps in zip(scenes, self.paths)]
        es_local = [fx.make_item(sc, {b: str(p) for b, p in ps.items()}) for sc, ps in zip(scenes, self.paths)]
        self.es_items_local = self._write("items_es_local.json", es_local)
        self.es_items_http = self._write("items_es_http.json", es_http)
        self.pc_items_http = self._write("items_pc_http.json", pc_http)
        self.es_api = self._api(self.es_items_http)
        self.pc_api = self._api(self.pc_items_http)
        self.proxies = [self.files, self.pc_files, self.es_api, self.pc_api]

    def _write(self, name, feats) -> Path:
        p = self.root / name
        p.write_text(json.dumps({"type": "FeatureCollection", "features": feats}))
        return p

    def _keep(self, obj):
        self._stack.append(obj)
        return obj

    def _api(self, items_path: Path) -> FaultProxy:
        port = free_port()
        proxy = self._keep(FaultProxy(f"http://127.0.0.1:{port}"))
        self._keep(RustacServer([items_path], public_url=proxy.url, port=port))
        return proxy

    def reset(self) -> None:
        for p in self.proxies:
            p.clear()
            p.reset_counts()
            p.extra_conformance = []

    def close(self) -> None:
        while self._stack:
            obj = self._stack.pop()
            (obj.stop if hasattr(obj, "stop") else obj.close)()


# -- pytest fixtures (imported by tests/conftest.py) ---------------------------------------------

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def local_cloud(tmp_path_factory):
    """A :class:`LocalCloud` for the whole session (skips only if the rustac binary is missing)."""
    if rustac_binary() is None:
        pytest.skip("rustac binary not found; install the dev extra (pip install rustac)")
    try:
        import RangeHTTPServer  # noqa: F401
    except ImportError:
        pytest.skip("rangehttpserver not installed; install the dev extra (pip install rangehttpserver)")
    lc = LocalCloud(tmp_path_factory.mktemp("s2cloud"))
    try:
        yield lc
    finally:
        lc.close()


def forget_cog_headers() -> None:
    """Drop the COG headers this process keeps between reads of a file: the next read of every file then asks
    the server again (as a new process would)."""
    from geo.sources.cog_ranges import clear_header_cache

    clear_header_cache()


def fresh_process_caches() -> None:
    """Forget what this process caches between reads, as a new (worker) process starts: SAS tokens, COG headers."""
    from geo.sources.providers import clear_token_cache

    clear_token_cache()
    forget_cog_headers()


@pytest.fixture
def cloud(local_cloud):
    """The session's LocalCloud with faults cleared and counters reset before and after each test."""
    from geo.sources.providers import clear_token_cache

    local_cloud.reset()
    clear_token_cache()
    yield local_cloud
    local_cloud.reset()
