"""The interactive map in report.html, driven in real headless Chromium through WebDriver (Debian chromium-driver).

Network off: every host name resolves to nothing and a dead proxy is set; the WebDriver performance log records
every request the page makes, which must all be the report file itself or inline ``data:`` URIs. The test moves the
season slider with the keyboard, as a reader would, and compares what Leaflet drew (SVG paths per class, site
outlines) with the GeoJSON / GeoPackage the run wrote; it zooms past the detail zoom, opens a popup, and saves one
screenshot of ``#map`` per season as ``webmap_<season>.png`` in the run folder (pytest's tmp dir; the path is printed).
"""

from __future__ import annotations

import json
import re
import shutil
from collections import Counter
from pathlib import Path

import pyogrio
import pytest

from runfolder import run_folder  # noqa: F401  (pytest fixture)

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path(shutil.which("chromedriver") or "/usr/bin/chromedriver")

FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-extensions",
         "--window-size=1200,900", "--host-resolver-rules=MAP * ~NOTFOUND", "--proxy-server=http://127.0.0.1:9",
         "--proxy-bypass-list=<-loopback>"]


def _missing() -> str | None:
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium not installed (pip install -e '.[dev]')"
    if not CHROMIUM.exists():
        return "Debian chromium not installed (/usr/bin/chromium); .ci/run installs it"
    if not CHROMEDRIVER.exists():
        return "chromium-driver not installed (/usr/bin/chromedriver); .ci/run installs it"
    return None


@pytest.fixture
def browser(tmp_path):
    reason = _missing()
    if reason:
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = str(CHROMIUM)
    for f in FLAGS + [f"--user-data-dir={tmp_path / 'profile'}"]:
        opts.add_argument(f)
    opts.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=opts)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def _requests(driver) -> list[str]:
    urls = []
    for entry in driver.get_log("performance"):
        msg = json.loads(entry["message"])["message"]
        if msg.get("method") == "Network.requestWillBeSent":
            urls.append(msg["params"]["request"]["url"])
    return urls


def _expected(rf, season: str) -> tuple[Counter, int]:
    doc = json.loads((rf.path / f"footprints_{season}.geojson").read_text(encoding="utf-8"))
    classes = Counter(f["properties"]["class_name"] for f in doc["features"])
    n_sites = pyogrio.read_info(rf.path / "footprints.gpkg", layer=f"sites_{season}")["features"]
    return classes, n_sites


DRAWN = """const m = window.minewatchMap, d = m.drawn(), b = m.map.getBounds();
let inView = 0; m.map.eachLayer(l => { if (l.getBounds && l.feature && b.contains(l.getBounds())) inView++; });
return Object.assign(d, {
  pond: document.querySelectorAll('#map path.mw-fp.mw-leaching_pond').length,
  cleared: document.querySelectorAll('#map path.mw-fp.mw-cleared_land').length,
  site: document.querySelectorAll('#map path.mw-site').length,
  images: [...document.querySelectorAll('#map img.mw-imagery')].map(i => i.complete && i.naturalWidth > 0),
  unseen_ok: [...document.querySelectorAll('#map img.mw-unseen')].every(i => i.complete && i.naturalWidth > 0),
  inView: inView, zoom: m.map.getZoom(), label: document.getElementById('mw-season-label').textContent});"""


@pytest.mark.external
def test_webmap_seasons_offline_in_chromium(run_folder, browser):  # noqa: F811
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    rf = run_folder
    html = rf.path / "report.html"
    browser.get("about:blank")
    _requests(browser)  # drain: the browser's own start-up pages are not the report's requests
    browser.get(html.resolve().as_uri())
    WebDriverWait(browser, 30).until(lambda d: d.execute_script("return !!window.minewatchMap"))
    assert browser.find_element(By.ID, "map").is_displayed()
    slider = browser.find_element(By.ID, "mw-season")
    assert int(slider.get_attribute("max")) == len(rf.periods) - 1
    slider.send_keys(Keys.HOME)  # first season, then step right with the arrow key
    shots = []
    for i, season in enumerate(rf.periods):
        if i:
            slider.send_keys(Keys.ARROW_RIGHT)
        d = browser.execute_script(DRAWN)
        classes, n_sites = _expected(rf, season)
        assert d["season"] == season and season in d["label"], d
        assert d["footprints"] == sum(classes.values()) == rf.expected[season].n_features, (season, d, classes)
        assert (d["pond"], d["cleared"]) == (classes["leaching_pond"], classes["cleared_land"]), (season, d)
        assert d["sites"] == d["site"] == n_sites == rf.expected[season].n_sites, (season, d)
        assert d["inView"] == d["footprints"] + d["sites"], f"{season}: features drawn outside the view ({d})"
        # Only the last season has a task composite in this run folder; it is drawn (decoded) as imagery.
        assert d["images"] == ([True] if season == rf.periods[-1] else []), (season, d["images"])
        # every season has the never-clear strip: drawn as "not observed", not left looking like bare ground
        assert d["unseen"] == 1 and d["unseen_ok"], (season, d)
        shot = rf.path / f"webmap_{season}.png"
        el = browser.find_element(By.ID, "map")
        browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", el)
        el.screenshot(str(shot))
        shots.append(shot)
    print("web map screenshots:", ", ".join(str(s) for s in shots))
    assert all(s.stat().st_size > 5000 for s in shots)

    # Zoom past the detail zoom: full-precision geometry replaces the simplified one, nothing is lost.
    last = rf.periods[-1]
    browser.execute_script("const m = window.minewatchMap.map; m.setZoom(m.getZoom() + 3, {animate: false});")
    d = browser.execute_script(DRAWN)
    assert d["detail"] is True and d["footprints"] == rf.expected[last].n_features, d
    browser.execute_script("window.minewatchMap.map.fitBounds(window.minewatchMap.bounds, {animate: false});")

    # A real click on a pond opens a popup with class, area, site, confidence and season (area: one of the GeoJSON's).
    from selenium.webdriver.common.action_chains import ActionChains

    el = browser.find_element(By.ID, "map")
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", el)
    pond = browser.find_element(By.CSS_SELECTOR, "#map path.mw-fp.mw-leaching_pond")
    ActionChains(browser).move_to_element(pond).click().perform()
    WebDriverWait(browser, 10).until(lambda d: d.find_elements(By.CSS_SELECTOR, ".leaflet-popup-content"))
    text = browser.find_element(By.CSS_SELECTOR, ".leaflet-popup-content").get_attribute("innerText")
    assert "leaching pond" in text and "Site: #" in text and "Confidence:" in text and last in text, text
    doc = json.loads((rf.path / f"footprints_{last}.geojson").read_text(encoding="utf-8"))
    areas = {round(f["properties"]["area_m2"]) for f in doc["features"] if f["properties"]["class_name"] == "leaching_pond"}
    m = re.search(r"\((\d+) m²\)", text)
    assert m and int(m.group(1)) in areas, (text, areas)
    conf = re.search(r"Confidence: ([\d.]+) %", text)
    assert conf and 0 <= float(conf.group(1)) <= 100, text

    # Furniture: metric scale bar and the Copernicus attribution.
    assert re.search(r"\d+ (m|km)", browser.find_element(By.CSS_SELECTOR, ".leaflet-control-scale-line").text)
    assert "Copernicus Sentinel data" in browser.find_element(By.CSS_SELECTOR, ".leaflet-control-attribution").text

    # Nothing was fetched: only the file itself and inline data: URIs, and no JavaScript error.
    reqs = _requests(browser)
    assert reqs and all(u == html.resolve().as_uri() or u.startswith("data:") for u in reqs), reqs
    res = browser.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert all(u.startswith("data:") for u in res), res
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == [], errors


@pytest.mark.external
def test_webmap_harness_sees_a_remote_request(browser, tmp_path):
    """The harness can fail: a page that loads a remote script shows up in the request log (and fails)."""
    page = tmp_path / "remote.html"
    browser.get("about:blank")
    _requests(browser)
    page.write_text('<!DOCTYPE html><html><head><title>x</title><script src="https://unpkg.com/leaflet.js"></script>'
                    '</head><body><div id="map"></div></body></html>', encoding="utf-8")
    browser.get(page.resolve().as_uri())
    reqs = _requests(browser)
    assert any(u.startswith("https://unpkg.com/") for u in reqs), reqs
    assert browser.execute_script("return typeof L") == "undefined"  # network off: the script never arrived
