"""report.html in a real browser: headless Debian Chromium, network off, driven over the DevTools protocol.

Chromium is started with ``--remote-debugging-pipe`` (DevTools messages on file descriptors 3/4, so no
websocket library is needed), every host name resolves to nothing and a dead proxy is set, so any request
that leaves the file would fail and be recorded (``Network.loadingFailed``). The test loads the report from
disk, then asks the page itself whether every chart/map image decoded, and saves a full-page screenshot
``report_screenshot.png`` into the run folder for review.
"""

from __future__ import annotations

import base64
import json
import os
import select
import subprocess
import time
from pathlib import Path

import pytest

from runfolder import run_folder  # noqa: F401  (pytest fixture)

CHROMIUM = Path("/usr/bin/chromium")

def needs_chromium(fn):
    """Mark a test external and skip it (with the reason) where Debian's chromium is absent."""
    skip = pytest.mark.skipif(not CHROMIUM.exists(),
                              reason="Debian chromium not installed (/usr/bin/chromium); .ci/run installs it")
    return pytest.mark.external(skip(fn))

FLAGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-default-apps",
    "--disable-extensions", "--mute-audio", "--hide-scrollbars", "--window-size=1200,900",
    # Network off: no name resolves and every proxied request goes to a closed port.
    "--host-resolver-rules=MAP * ~NOTFOUND", "--proxy-server=http://127.0.0.1:9", "--proxy-bypass-list=<-loopback>",
]

#: Ask the loaded page what it shows (runs inside Chromium).
PAGE_PROBE = """JSON.stringify({
  title: document.title,
  h2: [...document.querySelectorAll('h2')].map(h => h.textContent),
  tables: [...document.querySelectorAll('table')].map(t => t.querySelectorAll('tbody tr').length),
  images: [...document.images].filter(i => !i.closest('#map')).map(i => ({alt: i.alt, scheme: i.src.split(':')[0], complete: i.complete,
                                           w: i.naturalWidth, h: i.naturalHeight, shownW: i.width})),
  external: [...document.querySelectorAll('[src],[href]')].map(e => e.getAttribute('src') || e.getAttribute('href'))
            .filter(u => !u.startsWith('data:') && !u.startsWith('#')),
  bodyHeight: document.body.scrollHeight
})"""


class DevTools:
    """A Chromium process driven over the DevTools protocol on pipes (messages end with a NUL byte)."""

    def __init__(self, profile: Path):
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()
        cmd = " ".join(_q(a) for a in [str(CHROMIUM), *FLAGS, "--remote-debugging-pipe", f"--user-data-dir={profile}",
                                       "about:blank"])
        self.proc = subprocess.Popen(["/bin/bash", "-c", f"exec {cmd} 3<&{to_browser_r} 4>&{from_browser_w}"],
                                     pass_fds=(to_browser_r, from_browser_w), stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._buf = b""
        self._id = 0
        self.events: list[dict] = []

    def send(self, method: str, params: dict | None = None, session: str | None = None, timeout: float = 30) -> dict:
        self._id += 1
        msg = {"id": self._id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._to_browser, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            m = self._next(deadline)
            if m.get("id") == self._id:
                if "error" in m:
                    raise RuntimeError(f"{method}: {m['error']}")
                return m.get("result", {})
            self.events.append(m)

    def wait_event(self, method: str, timeout: float = 30) -> dict:
        for e in self.events:
            if e.get("method") == method:
                return e
        deadline = time.monotonic() + timeout
        while True:
            m = self._next(deadline)
            self.events.append(m)
            if m.get("method") == method:
                return m

    def _next(self, deadline: float) -> dict:
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._from_browser], [], [], left)[0]:
                raise TimeoutError("Chromium did not answer over the DevTools pipe in time")
            chunk = os.read(self._from_browser, 1 << 20)
            if not chunk:
                raise RuntimeError(f"Chromium exited: {self.proc.stderr.read().decode(errors='replace')[-2000:]}")
            self._buf += chunk
        raw, self._buf = self._buf.split(b"\0", 1)
        return json.loads(raw)

    def close(self) -> None:
        try:
            self.send("Browser.close", timeout=5)
        except (TimeoutError, RuntimeError, OSError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._to_browser)
        os.close(self._from_browser)
        self.proc.stderr.close()


def _q(s: str) -> str:
    return "'" + s.replace("'", "'\\''") + "'"


def load_page(html: Path, screenshot: Path | None, profile: Path) -> dict:
    """Open ``html`` in headless Chromium; return the page probe, requests, failures and console errors."""
    dt = DevTools(profile)
    try:
        target = next(t for t in dt.send("Target.getTargets")["targetInfos"] if t["type"] == "page")
        sid = dt.send("Target.attachToTarget", {"targetId": target["targetId"], "flatten": True})["sessionId"]
        for domain in ("Network", "Page", "Runtime", "Log"):
            dt.send(f"{domain}.enable", session=sid)
        dt.events.clear()
        nav = dt.send("Page.navigate", {"url": html.resolve().as_uri()}, session=sid)
        dt.wait_event("Page.loadEventFired")
        probe = json.loads(dt.send("Runtime.evaluate", {"expression": PAGE_PROBE, "returnByValue": True},
                                   session=sid)["result"]["value"])
        if screenshot is not None:
            metrics = dt.send("Page.getLayoutMetrics", session=sid)["cssContentSize"]
            clip = {"x": 0, "y": 0, "width": 1200, "height": min(int(metrics["height"]), 6000), "scale": 1}
            shot = dt.send("Page.captureScreenshot", {"format": "png", "clip": clip, "captureBeyondViewport": True},
                           session=sid)
            screenshot.write_bytes(base64.b64decode(shot["data"]))
        ev = dt.events
        return {
            "nav_error": nav.get("errorText"),
            "probe": probe,
            "requests": [e["params"]["request"]["url"] for e in ev if e.get("method") == "Network.requestWillBeSent"],
            "failed": [e["params"].get("errorText") for e in ev if e.get("method") == "Network.loadingFailed"],
            "exceptions": [e["params"] for e in ev if e.get("method") == "Runtime.exceptionThrown"],
            "console_errors": [e["params"]["entry"]["text"] for e in ev
                               if e.get("method") == "Log.entryAdded" and e["params"]["entry"]["level"] == "error"],
        }
    finally:
        dt.close()


@needs_chromium
def test_report_html_offline_in_chromium(run_folder, tmp_path):  # noqa: F811
    html = run_folder.path / "report.html"
    shot = run_folder.path / "report_screenshot.png"
    t0 = time.perf_counter()
    res = load_page(html, shot, tmp_path / "profile")
    elapsed = time.perf_counter() - t0
    p = res["probe"]
    assert res["nav_error"] is None
    assert res["failed"] == [], f"requests failed with the network off: {res['failed']} ({res['requests']})"
    assert all(u.startswith("data:") or u == html.resolve().as_uri() for u in res["requests"]), res["requests"]
    assert res["exceptions"] == [] and res["console_errors"] == [], (res["exceptions"], res["console_errors"])
    assert p["external"] == [], f"report.html refers to files outside itself: {p['external']}"
    # The charts and the map are inline PNGs that Chromium decoded at a readable size.
    alts = [i["alt"] for i in p["images"]]
    assert "Growth chart" in alts and any(a.startswith("Map ") for a in alts), alts
    for img in p["images"]:
        assert img["scheme"] == "data" and img["complete"] and img["w"] >= 300 and img["h"] >= 200, img
        assert img["shownW"] <= 1100, f"{img['alt']} overflows the page ({img['shownW']} px)"
    # Tables: one row per period, one per published claim, one per pair of consecutive periods.
    from geo.results.claims import CLAIMS

    assert p["tables"] == [len(run_folder.periods), len(CLAIMS), len(run_folder.changes)], p["tables"]
    assert {"Published claims against this measurement", "Site changes between periods"} <= set(p["h2"])
    assert shot.stat().st_size > 20_000
    assert elapsed < 60, f"Chromium took {elapsed:.1f} s"


@needs_chromium
def test_probe_detects_a_failed_request(tmp_path):
    """The harness itself: a page that needs the network must show up as a failed request and a broken image."""
    page = tmp_path / "bad.html"
    page.write_text('<!DOCTYPE html><html><head><title>x</title></head><body><h2>x</h2>'
                    '<img alt="remote" src="https://example.org/chart.png"></body></html>', encoding="utf-8")
    res = load_page(page, None, tmp_path / "profile")
    assert res["failed"], res
    assert res["probe"]["external"] == ["https://example.org/chart.png"]
    img = res["probe"]["images"][0]
    assert img["scheme"] == "https" and img["w"] == 0


def test_report_html_has_no_external_references(run_folder):  # noqa: F811
    """Static check that complements the browser: nothing in the page points outside the file.

    The interactive map's scripts are inline (no ``src``), its CSS images are data URIs, and the page has no
    source-map hint that would make developer tools fetch a file.
    """
    import re

    text = (run_folder.path / "report.html").read_text(encoding="utf-8")
    markup = re.sub(r"<script\b[^>]*>.*?</script>", "", text, flags=re.S | re.I)  # HTML outside the scripts
    refs = re.findall(r'(?:src|href)\s*=\s*"([^"]*)"', markup)
    assert refs and all(r.startswith("data:image/png;base64,") for r in refs), refs[:5]
    scripts = re.findall(r"<script\b[^>]*>", text, flags=re.I)
    assert scripts and all("src" not in tag.lower() for tag in scripts), scripts
    assert "@import" not in text and "sourceMappingURL" not in text
    assert all(u.startswith("data:") for u in re.findall(r"url\(\s*['\"]?([^)'\"]*)", markup)), "CSS url() outside the file"
