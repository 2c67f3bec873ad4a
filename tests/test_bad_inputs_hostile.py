"""Bad inputs, security part (docs/ERRORS.md "Hostile inputs"): outputs stay in the run folder, assets are read
only from the provider's hosts AND ports, redirects are checked hop by hop (a loopback listener proves that no
request reaches a foreign address), no secrets are written. Helpers and the archive come from
tests/test_bad_inputs.py."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from geo.cli.main import main
from tests.conftest import REPO
from tests.test_bad_inputs import assert_msg, catalogue, cli, ds, run_args  # noqa: F401 — ds is a fixture


# -- security: outputs stay in the run folder, assets only from the provider's hosts, no secrets written --

def trust(tmp_path: Path, *urls: str) -> Path:
    """A run config whose ``[search] asset_hosts`` vouches for the host:port of each of ``urls``."""
    hosts = [u.split("://", 1)[1].split("/", 1)[0] for u in urls]
    p = tmp_path / "trust.toml"
    p.write_text(f"[search]\nasset_hosts = {json.dumps(hosts)}\n")
    return p


def _tree(root: Path) -> set[Path]:
    return {p for p in root.rglob("*")}


def test_hostile_item_ids_cannot_escape_run_folder(ds, tmp_path, capsys):
    """Item ids with '/', '..' and absolute paths are data, never file names: every file written lies under --out."""
    bad_ids = iter(["../../escape", "/tmp/abs-escape", "a/../../b", "..", "x/y/z", "ok\\..\\..\\win"] * 10)

    def rename(it):
        it["id"] = next(bad_ids)

    (tmp_path / "cat").mkdir()
    items = catalogue(ds, tmp_path / "cat", rename)
    out = tmp_path / "sandbox" / "run"
    out.parent.mkdir()
    before_tmp, before_ds = _tree(tmp_path), _tree(ds.root)
    with pytest.raises(SystemExit) as exc:
        main(["-q", *map(str, run_args(ds, out, items))])
    assert exc.value.code == 0, capsys.readouterr().err
    new = {p for p in _tree(tmp_path) - before_tmp}
    assert new and all(out in p.parents or p == out for p in new), sorted(new - {p for p in new if out in p.parents})
    assert _tree(ds.root) == before_ds
    assert not Path("/tmp/abs-escape").exists()
    man = json.loads((out / "manifest.json").read_text())
    assert "../../escape" in sum(man["scenes"].values(), [])  # kept as data


def _serve(ds, tmp_path, href_for):
    """The archive's items behind `rustac serve`, with asset hrefs rewritten by ``href_for(path)``."""
    from servers import RustacServer, rustac_binary

    if rustac_binary() is None:
        pytest.skip("rustac binary not found; install the dev extra (pip install rustac)")

    def mutate(it):
        for a in it["assets"].values():
            if a.get("href", "").endswith(".tif"):
                a["href"] = href_for(Path(a["href"]))

    return RustacServer([catalogue(ds, tmp_path, mutate)])


@pytest.mark.parametrize("href_for,needle", [
    (lambda p: f"https://evil.example.com/{p.name}", "host 'evil.example.com'"),
    (lambda p: str(p), "scheme 'local file'"),
    (lambda p: f"file://{p}", "scheme 'file'"),
    (lambda p: f"s3://sentinel-cogs/{p.name}", "scheme 's3'"),
])
def test_assets_only_from_provider_hosts(ds, tmp_path, capsys, href_for, needle):
    with _serve(ds, tmp_path, href_for) as api:
        code, line = cli(run_args(ds, tmp_path / "run", api.url), capsys)
    assert code == 3
    assert_msg(line, needle, "check the --stac-url catalogue")
    assert not (tmp_path / "run" / "tasks").exists(), "no task may start on an untrusted asset"


def test_local_catalogue_refuses_other_schemes(ds, tmp_path, capsys):
    items = catalogue(ds, tmp_path, lambda it: it["assets"]["red"].update(href="ftp://example.org/B04.tif"))
    code, line = cli(run_args(ds, tmp_path / "run", items), capsys)
    assert code == 3
    assert_msg(line, "scheme 'ftp'", "check the --stac-url catalogue")


def test_credentials_never_written(ds, tmp_path):
    """A full run over http with a user:password URL and a token query: neither reaches the logs (-vv),
    the manifest or any other output; the same-host http assets are accepted."""
    from servers import RangeServer

    secret_pw, secret_tok = "pw-Zq81x", "tok-Hx93k"
    with RangeServer(ds.root) as files:
        base = files.url
        with _serve(ds, tmp_path, lambda p: f"{base}/{p.relative_to(ds.root)}") as api:
            url = api.url.replace("http://", f"http://reader:{secret_pw}@") + f"/?token={secret_tok}"
            out = tmp_path / "run"
            cfg = trust(tmp_path, base)  # the COG server listens on another port than the API
            res = subprocess.run([sys.executable, "-m", "geo", "-vv", *map(str, run_args(ds, out, url, None,
                                                                                          "--config", cfg))],
                                 capture_output=True, text=True, timeout=300, cwd=REPO)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "Traceback" not in res.stderr
    for secret in (secret_pw, secret_tok):
        assert secret not in res.stderr and secret not in res.stdout
        for p in out.rglob("*"):
            if p.is_file() and p.suffix in (".json", ".md", ".html", ".csv", ".geojson"):
                assert secret not in p.read_text(errors="replace"), p
    man = json.loads((out / "manifest.json").read_text())
    assert man["status"] == "complete" and man["parameters"]["search"]["provider"].startswith("http://127.0.0.1:")


# -- redirects and ports: a listener on loopback proves that nothing reaches the foreign address ---------------

class Listener:
    """An HTTP server on 127.0.0.1 that records every request and answers with ``answer(handler)`` (default:
    404). ``Listener.redirect_to(url)`` answers every GET with ``302 Location: url + path``."""

    def __init__(self, answer=None):
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.requests: list[str] = []
        outer = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                outer.requests.append(self.path)
                if answer is None:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                else:
                    answer(self)

            do_HEAD = do_GET

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @classmethod
    def redirect_to(cls, target: str) -> "Listener":
        def answer(h):
            h.send_response(302)
            h.send_header("Location", target + h.path)
            h.send_header("Content-Length", "0")
            h.end_headers()
        return cls(answer)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def test_allowlist_compares_host_and_port():
    from geo.sources.remote import HostAllowlist

    allow = HostAllowlist.of(["http://127.0.0.1:8001/api", "cogs.example.org", ".blob.example.net", "h.example:9000"])
    assert allow.permits("http://127.0.0.1:8001/x.tif")
    assert not allow.permits("http://127.0.0.1:8002/x.tif"), "same host, other port"
    assert allow.permits("https://cogs.example.org/x.tif") and allow.permits("http://cogs.example.org:80/x.tif")
    assert allow.permits("https://cogs.example.org:443/x.tif")
    assert not allow.permits("https://cogs.example.org:8443/x.tif")
    assert allow.permits("https://acct.blob.example.net/c/x.tif") and not allow.permits("https://blob.example.net.evil.io/")
    assert allow.permits("http://h.example:9000/a") and not allow.permits("http://h.example/a")
    assert not allow.permits("file:///etc/passwd") and not allow.permits("ftp://cogs.example.org/x.tif")


def test_redirect_outside_allowlist_is_never_requested():
    from geo.errors import exit_code_for
    from geo.sources.remote import HostAllowlist, RedirectRefused, get

    with Listener() as foreign:
        with Listener.redirect_to(foreign.url) as asset_host:
            allow = HostAllowlist.of([asset_host.url])
            with pytest.raises(RedirectRefused) as exc:
                get(asset_host.url + "/B04.tif", allow=allow)
            with pytest.raises(RedirectRefused):  # no allowlist at all: only the same origin
                get(asset_host.url + "/B04.tif")
        assert foreign.requests == [], "the foreign address must receive no request"
    assert exit_code_for(exc.value) == 3
    assert_msg(str(exc.value), f"redirected to {foreign.url}/B04.tif", "add the host:port to [search] asset_hosts")


def test_redirects_within_the_allowlist_are_followed():
    from geo.sources.gdal_http import resolve_redirects
    from geo.sources.remote import HostAllowlist, get

    def ok(h):
        h.send_response(200)
        h.send_header("Content-Length", "2")
        h.end_headers()
        h.wfile.write(b"ok")

    with Listener(ok) as mirror, Listener.redirect_to(mirror.url) as front:
        allow = HostAllowlist.of([front.url, mirror.url])
        assert get(front.url + "/a.tif", allow=allow).content == b"ok"
        assert resolve_redirects(front.url + "/a.tif", allow=allow) == mirror.url + "/a.tif"
        assert mirror.requests == ["/a.tif", "/a.tif"]


def test_redirect_loop_is_cut():
    from geo.errors import StacError
    from geo.sources.remote import RetryPolicy, get

    def loop(h):
        h.send_response(302)
        h.send_header("Location", h.path + "x")
        h.send_header("Content-Length", "0")
        h.end_headers()

    with Listener(loop) as srv:
        with pytest.raises(StacError, match="redirected more than 3 times"):
            get(srv.url + "/a", policy=RetryPolicy(max_redirects=3))
        assert len(srv.requests) == 4


def test_dripping_server_is_cut_at_the_deadline():
    """A server that sends one byte every 0.3 s (never stalling the read timeout) is cut off at the deadline."""
    import time

    from geo.errors import StacError
    from geo.sources.cog_ranges import RangeFile
    from geo.sources.remote import RetryPolicy, get

    def drip(h):
        h.send_response(206 if "Range" in h.headers else 200)
        h.send_header("Content-Length", "100000")
        h.send_header("Content-Range", "bytes 0-99999/100000")
        h.end_headers()
        try:
            for _ in range(100000):
                h.wfile.write(b"x")
                h.wfile.flush()
                time.sleep(0.3)
        except OSError:
            pass

    policy = RetryPolicy(attempts=5, backoff_s=0.05, timeout_s=2.0, deadline_s=1.0)  # a cut try is retried once
    with Listener(drip) as srv:
        t0 = time.monotonic()
        with pytest.raises(StacError, match="still arriving at the deadline"):
            get(srv.url + "/a.tif", policy=policy)
        assert time.monotonic() - t0 < 6.0
        assert srv.requests == ["/a.tif", "/a.tif"]
        t0 = time.monotonic()
        with pytest.raises(StacError, match="still arriving at the deadline"):  # the COG range reader uses the same deadline
            RangeFile(srv.url + "/b.tif", policy=policy, cache=None)
        assert time.monotonic() - t0 < 6.0


def test_range_answer_for_other_bytes_is_refused():
    """A 206 whose Content-Range starts elsewhere than the range asked for is never used."""
    from geo.errors import StacError
    from geo.sources.cog_ranges import RangeFile
    from geo.sources.remote import RetryPolicy

    def wrong(h):
        body = b"y" * 32768
        h.send_response(206)
        h.send_header("Content-Length", str(len(body)))
        h.send_header("Content-Range", "bytes 1000-33767/100000")
        h.end_headers()
        h.wfile.write(body)

    with Listener(wrong) as srv:
        with pytest.raises(StacError) as exc:
            RangeFile(srv.url + "/c.tif", policy=RetryPolicy(attempts=1), cache=None)
    assert_msg(str(exc.value), "answered a range request for bytes 0-32767", "mishandles range requests")


def _serve_with(ds, tmp_path, href_for):
    from servers import RustacServer, rustac_binary

    if rustac_binary() is None:
        pytest.skip("rustac binary not found; install the dev extra (pip install rustac)")

    def mutate(it):
        for a in it["assets"].values():
            if a.get("href", "").endswith(".tif"):
                a["href"] = href_for(Path(a["href"]))

    (tmp_path / "cat").mkdir(exist_ok=True)
    return RustacServer([catalogue(ds, tmp_path / "cat", mutate)])


def test_asset_on_api_host_but_other_port_is_refused(ds, tmp_path, capsys):
    with Listener() as other_port:
        with _serve_with(ds, tmp_path, lambda p: f"{other_port.url}/{p.name}") as api:
            code, line = cli(run_args(ds, tmp_path / "run", api.url), capsys)
        assert other_port.requests == [], "nothing may be fetched from another port of the API's host"
    assert code == 3
    assert_msg(line, f"host '127.0.0.1', port {other_port.url.rsplit(':', 1)[1]}", "check the --stac-url catalogue")
    assert not (tmp_path / "run" / "tasks").exists()


@pytest.mark.parametrize("executor", ["--sync", "dask"])
def test_redirect_from_allowed_asset_host_to_foreign_port(ds, tmp_path, executor):
    """An asset host the catalogue names answers 302 to another port on localhost: refused (exit 3) on the
    default executor (Dask, several tasks) as in-process, and the foreign listener sees no request."""
    with Listener() as foreign, Listener.redirect_to(foreign.url) as asset_host:
        items = catalogue(ds, tmp_path, lambda it: it["assets"]["red"].update(href=f"{asset_host.url}/B04.tif"))
        extra = ["--sync"] if executor == "--sync" else ["--tile-px", "100", "--workers", "2"]
        args = ["run", "--aoi", ds.aoi_path, "--start", "2021", "--end", "2023", "--out", tmp_path / "run",
                "--stac-url", items, *extra]
        res = subprocess.run([sys.executable, "-m", "geo", "-q", *map(str, args)], capture_output=True, text=True,
                             timeout=300, cwd=REPO)
        assert foreign.requests == [], "the redirect target must never be requested"
        assert asset_host.requests, "the allowed host was asked"
    from tests.test_bad_inputs import one_line_error

    line = one_line_error(res.stderr)
    assert res.returncode == 3, res.stderr
    assert_msg(line, f"redirected to {foreign.url}/B04.tif", "asset_hosts")
    assert json.loads((tmp_path / "run" / "manifest.json").read_text())["status"] == "failed"


def test_stac_api_redirect_to_foreign_port_is_never_requested(tmp_path):
    from geo.aoi import read_aoi
    from geo.errors import exit_code_for
    from geo.periods import parse_interval
    from geo.sources.providers import Provider
    from geo.sources.remote import RedirectRefused, RetryPolicy
    from geo.sources.stac import search
    from tests.test_bad_inputs import SQUARE, aoi_file

    aoi = read_aoi(aoi_file(tmp_path, SQUARE))
    with Listener() as foreign, Listener.redirect_to(foreign.url) as api:
        with pytest.raises(RedirectRefused) as exc:
            search(aoi, parse_interval("2021-11/2022-04"), provider=Provider("api", api.url, policy=RetryPolicy(attempts=1)))
        assert foreign.requests == [] and api.requests
    assert exit_code_for(exc.value) == 3
    assert_msg(str(exc.value), f"redirected to {foreign.url}/", "check the catalogue")
