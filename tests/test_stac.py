"""STAC search against real servers on 127.0.0.1: rustac serve (Earth Search and Planetary Computer
shaped items) behind a fault-injecting proxy, plus the local ItemCollection path."""

from __future__ import annotations

import csv
import json
import logging
import time
from dataclasses import replace

import pystac
import pytest
from click.testing import CliRunner

import s2fixtures as fx
from geo.aoi import read_aoi
from geo.errors import StacError
from geo.periods import dry_season, parse_interval
from geo.sources.providers import (PROVIDERS, SIGNER_PROPERTY, Provider, Signer, mark_item, resolve_provider, sign_href,
                           with_url)
from geo.sources.remote import RetryPolicy, parse_retry_after, redact
from geo.sources.stac import dedup_items, search
from servers import SAS_TOKEN, SECRET_MARK, RustacServer, free_port, sas_token_n

FAST = RetryPolicy(attempts=4, backoff_s=0.05, max_backoff_s=3.0, timeout_s=1.0)
SEASON = dry_season(2021)
ALL_KEPT = ["S2B_47QQU_20211203_0_L2A", "S2B_47QRU_20211203_0_L2A", "S2B_47QQU_20220107_1_L2A",
            "S2A_47QQU_20220318_0_L2A"]


def _aoi(tmp_path, bounds, name="aoi"):
    p = tmp_path / f"{name}.geojson"
    p.write_text(json.dumps(fx.aoi_geojson(*bounds)))
    return read_aoi(p)


@pytest.fixture
def aoi_both(tmp_path):
    """Spans both tiles (x 430500–433000), so the 2021-12-03 datatake needs both."""
    return _aoi(tmp_path, (430500, 2838500, 433000, 2839600), "both")


@pytest.fixture
def aoi_overlap(tmp_path):
    """Inside the 560 m overlap of the two tiles: one tile of a datatake is enough."""
    return _aoi(tmp_path, (432100, 2838500, 432400, 2839600), "overlap")


def es(cloud, **kw) -> Provider:
    return Provider("es-local", cloud.es_api.url, page_size=kw.pop("page_size", 2), policy=FAST, **kw)


def pc(cloud) -> Provider:
    return with_url(PROVIDERS["planetary-computer"], cloud.pc_api.url, page_size=2, policy=FAST,
                    token_url=f"{cloud.pc_files.url}/api/sas/v1/token")


# -- local ItemCollection ------------------------------------------------------------------------

def test_local_items_filter_and_dedup(cloud, aoi_both):
    items = search(aoi_both, SEASON, provider=str(cloud.es_items_local))
    assert [i.id for i in items] == ALL_KEPT  # 95 % cloud dropped, old 03.01 reprocessing dropped
    assert items[2].properties["s2:processing_baseline"] == "04.00"


def test_local_items_overlap_keeps_one_tile(cloud, aoi_overlap):
    ids = [i.id for i in search(aoi_overlap, SEASON, provider=str(cloud.es_items_local))]
    assert sum("20211203" in i for i in ids) == 1
    assert len(ids) == 3


def test_local_items_cloud_limit_and_period(cloud, aoi_both):
    assert [i.id for i in search(aoi_both, SEASON, provider=str(cloud.es_items_local), max_cloud=5.5)] == [ALL_KEPT[0]]
    assert len(search(aoi_both, SEASON, provider=str(cloud.es_items_local), max_cloud=100)) == 5
    two = search(aoi_both, SEASON, provider=str(cloud.es_items_local), limit=2)
    assert [i.id for i in two] == ALL_KEPT[:2]  # least cloudy two, in time order
    assert search(aoi_both, parse_interval("2022-03-01/2022-03-31"), provider=str(cloud.es_items_local))[0].id \
        == ALL_KEPT[3]
    assert search(aoi_both, dry_season(2019), provider=str(cloud.es_items_local)) == []


def test_local_items_bad_file(tmp_path, aoi_both):
    with pytest.raises(StacError, match="does not exist"):
        search(aoi_both, SEASON, provider=str(tmp_path / "nope.json"))
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(StacError, match="not readable JSON"):
        search(aoi_both, SEASON, provider=str(tmp_path / "bad.json"))


def test_provider_resolution():
    assert resolve_provider("earth-search").url.startswith("https://earth-search")
    assert resolve_provider("planetary-computer").signer == "planetary-computer"
    assert resolve_provider("http://127.0.0.1:1/api/").url == "http://127.0.0.1:1/api"
    with pytest.raises(StacError, match="scheme 's3'"):
        resolve_provider("s3://bucket/items.json")
    with pytest.raises(StacError, match="unknown provider"):
        resolve_provider("earth-serch")


# -- STAC API (rustac serve) ---------------------------------------------------------------------

def test_api_search_matches_local_and_pages(cloud, aoi_both, caplog):
    caplog.set_level(logging.INFO, logger="geo.sources.stac")
    items = search(aoi_both, SEASON, provider=es(cloud))
    assert [i.id for i in items] == ALL_KEPT
    posts = [p for (m, p, s) in cloud.es_api.log if m == "POST" and p.startswith("/search")]
    assert len(posts) >= 3  # 6 matches at 2 per page: the 'next' links were followed
    assert "client-side" in caplog.text  # rustac lists neither query nor filter
    assert all("query" not in b and "filter" not in b for b in cloud.es_api.bodies)


@pytest.mark.parametrize("conf,key", [("https://api.stacspec.org/v1.0.0/item-search#query", "query"),
                                      ("https://api.stacspec.org/v1.0.0-rc.2/item-search#filter", "filter")])
def test_api_server_side_cloud_filter_when_conformant(cloud, aoi_both, conf, key):
    cloud.es_api.extra_conformance = [conf]
    search(aoi_both, SEASON, provider=es(cloud), max_cloud=30)
    bodies = [b for b in cloud.es_api.bodies if key in b]
    assert bodies, f"no {key} sent to a server that conforms to it"
    assert "30" in json.dumps(bodies[0][key])


@pytest.mark.parametrize("fault,kw", [
    ("status", {"code": 500}), ("status", {"code": 503}), ("429", {"retry_after": 1}),
    ("stall", {"seconds": 2.5}), ("truncate", {}), ("drop", {}),
])
def test_api_faults_recovered(cloud, aoi_both, fault, kw):
    cloud.es_api.inject(fault, times=2, path="^/search", **kw)
    t0 = time.monotonic()
    items = search(aoi_both, SEASON, provider=es(cloud))
    assert [i.id for i in items] == ALL_KEPT
    outcomes = [s for (m, p, s) in cloud.es_api.log if p.startswith("/search")]
    assert len(outcomes) >= 5  # two failures plus the pages
    if fault == "429":
        assert time.monotonic() - t0 >= 2.0  # Retry-After: 1 honoured twice


def test_api_persistent_failure_is_clear(cloud, aoi_both):
    cloud.es_api.fail_all("status", code=502)
    with pytest.raises(StacError, match=r"failed after 4 tries \(last: HTTP 502\)"):
        search(aoi_both, SEASON, provider=es(cloud))


def test_api_unreachable(aoi_both):
    prov = Provider("dead", f"http://127.0.0.1:{free_port()}", policy=replace(FAST, attempts=2))
    with pytest.raises(StacError, match="ConnectionError"):
        search(aoi_both, SEASON, provider=prov)


def test_local_items_of_another_collection_do_not_answer_for_it(cloud, aoi_both):
    """--collection with a local ItemCollection file was ignored: the file's sentinel-2-l2a items answered for
    'landsat-c2-l2' and the run exited 0. The file's own collection is still accepted, and no --collection filters
    nothing (a file's items may carry no collection)."""
    local = str(cloud.es_items_local)
    with pytest.raises(StacError, match="holds no item of collection 'landsat-c2-l2' .it has: sentinel-2-l2a"):
        search(aoi_both, SEASON, provider=local, collection="landsat-c2-l2")
    assert [i.id for i in search(aoi_both, SEASON, provider=local, collection="sentinel-2-l2a")] == ALL_KEPT
    assert [i.id for i in search(aoi_both, SEASON, provider=local)] == ALL_KEPT


def test_api_unknown_collection(cloud, aoi_both):
    with pytest.raises(StacError):
        search(aoi_both, SEASON, provider=es(cloud, collection="landsat-c2-l2"))


# -- Planetary Computer profile: PC item shape + SAS signing -------------------------------------

def test_planetary_computer_search_marks_items_unsigned(cloud, aoi_both, caplog):
    """Search signs nothing (tokens expire within the hour; runs last longer): PC items keep plain hrefs
    and carry a mark naming the token endpoint, so that each read signs (geo.sources.load)."""
    caplog.set_level(logging.DEBUG)
    items = search(aoi_both, SEASON, provider=pc(cloud))
    assert [i.properties["s2:mgrs_tile"] for i in items] == ["47QQU", "47QRU", "47QQU", "47QQU"]
    assert items[2].properties["s2:processing_baseline"] == "04.00"
    assert all("?" not in a.href for i in items for a in i.assets.values())
    assert {Signer.of_item(i) for i in items} == {Signer(f"{cloud.pc_files.url}/api/sas/v1/token", "sentinel-2-l2a")}
    assert cloud.pc_files.token_requests == 0  # no token at search time
    assert "sig=" not in json.dumps([i.to_dict() for i in items]) and SECRET_MARK not in caplog.text


def test_signing_mark_only_from_the_provider_profile(cloud, aoi_both, tmp_path):
    """A STAC API cannot name a token endpoint: its marks are dropped; a local file (the user's own, e.g.
    written by `minewatch search --json`) keeps them."""
    doc = json.loads(cloud.es_items_local.read_text())
    for f in doc["features"]:
        f["properties"][SIGNER_PROPERTY] = {"kind": "planetary-computer", "token_url": "http://evil.example/t",
                                            "collection": "x"}
    (tmp_path / "marked.json").write_text(json.dumps(doc))
    local = search(aoi_both, SEASON, provider=str(tmp_path / "marked.json"))
    assert all(Signer.of_item(i) == Signer("http://evil.example/t", "x") for i in local)
    with RustacServer([tmp_path / "marked.json"]) as api:
        remote = search(aoi_both, SEASON, provider=Provider("api", api.url, policy=FAST))
    assert [i.id for i in remote] == [i.id for i in local]
    assert all(SIGNER_PROPERTY not in i.properties for i in remote)
    unsigned = Provider("api", "http://127.0.0.1:1", signer="planetary-computer", token_url=None)
    with pytest.raises(StacError, match="needs a token_url"):
        mark_item(local[0], unsigned)
    local[0].properties[SIGNER_PROPERTY]["token_url"] = "ftp://evil.example/t?sig=x"
    with pytest.raises(StacError, match=r"names no usable SAS token endpoint .*\(ftp://evil.example/t\)"):
        Signer.of_item(local[0])


def test_sign_href():
    assert sign_href("https://a.blob.core.windows.net/c/B04.tif", SAS_TOKEN).endswith("/B04.tif?" + SAS_TOKEN)
    stale = sign_href("https://a.blob.core.windows.net/c/B04.tif", sas_token_n(7))
    assert sign_href(stale, SAS_TOKEN) == "https://a.blob.core.windows.net/c/B04.tif?" + SAS_TOKEN  # replaced
    assert sign_href("https://h/x.tif?version=2", SAS_TOKEN) == "https://h/x.tif?version=2"  # not a SAS query
    assert sign_href("/data/B04.tif", SAS_TOKEN) == "/data/B04.tif"


def test_redact_and_retry_after():
    assert redact(f"https://user:pw@host:8443/a/b.tif?{SAS_TOKEN}#x") == "https://host:8443/a/b.tif"
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("garbage") is None
    assert 0 <= parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") <= 0.0 + 1e-9
    assert RetryPolicy(max_backoff_s=5).delay(1, retry_after=100) == 5


# -- de-duplication rules without servers --------------------------------------------------------

def _items(scenes, style="earth-search"):
    return [pystac.Item.from_dict(fx.make_item(s, {"B04": "/x.tif"}, style=style)) for s in scenes]


@pytest.mark.parametrize("style", ["earth-search", "pc"])
def test_dedup_reprocessing_keeps_newest(style):
    s = fx.default_scenes()
    items = _items([s[3], s[2]], style)  # 04.00 reprocessing first, 03.01 original second
    kept = dedup_items(items)
    assert len(kept) == 1 and kept[0].properties["s2:processing_baseline"] == "04.00"


def test_dedup_keeps_distinct_days_and_platforms():
    s = fx.default_scenes()
    kept = dedup_items(_items([s[0], s[2], s[5]]))
    assert len(kept) == 3


# -- CLI ---------------------------------------------------------------------------------------

def test_cli_search_table_json_csv(cloud, tmp_path):
    from geo.cli.main import cli

    aoi = tmp_path / "aoi.geojson"
    aoi.write_text(json.dumps(fx.aoi_geojson(430500, 2838500, 433000, 2839600)))
    res = CliRunner().invoke(cli, ["search", "--aoi", str(aoi), "--period", "2021-11-01/2022-04-30",
                                   "--provider", cloud.es_api.url, "--max-cloud", "15",
                                   "--json", str(tmp_path / "s.json"), "--csv", str(tmp_path / "s.csv")])
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()
    assert lines[0].split()[:2] == ["id", "date"] and len(lines) == 2 + 3
    assert "S2B_47QQU_20220107_1_L2A" in res.stdout and "04.00" in res.stdout and "47QRU" in res.stdout
    rows = list(csv.DictReader(open(tmp_path / "s.csv")))
    assert [r["cloud_pct"] for r in rows] == ["5.0", "6.0", "12.0"]
    doc = json.loads((tmp_path / "s.json").read_text())
    assert [f["id"] for f in doc["features"]] == [r["id"] for r in rows]


def test_cli_search_unreachable_exit_code(tmp_path, monkeypatch):
    from geo.cli.main import cli
    import geo.sources.providers as gp

    monkeypatch.setattr(gp, "DEFAULT_POLICY", replace(FAST, attempts=1))
    aoi = tmp_path / "aoi.geojson"
    aoi.write_text(json.dumps(fx.aoi_geojson(430500, 2838500, 433000, 2839600)))
    res = CliRunner().invoke(cli, ["search", "--aoi", str(aoi), "--period", "2021-11-01/2022-04-30",
                                   "--provider", f"http://127.0.0.1:{free_port()}/v1"])
    assert res.exit_code == 3
    assert "Error: STAC API" in res.output
