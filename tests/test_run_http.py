"""`minewatch run --stac-url http://127.0.0.1:PORT` against a real STAC API and a range-capable COG server."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from geo.cli.main import main
from geo.sim.demo import write_demo_dataset
from geo.sim.scene import SimConfig


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    root = tmp_path_factory.mktemp("http-archive")
    cfg = SimConfig(seed=11, width=200, height=200, margin=10, start_year=2019, end_year=2021,
                    acquisitions_per_season=2, initial_sites=3, new_sites_per_season=1, abandoned_sites=0)
    return write_demo_dataset(root, seed=11, config=cfg)


def _run(args):
    with pytest.raises(SystemExit) as exc:
        main(args)
    return exc.value.code


def test_run_over_stac_api_equals_local_catalogue(tmp_path, archive):
    from servers import RangeServer, RustacServer, rustac_binary

    if rustac_binary() is None:
        pytest.skip("rustac binary missing (pip install rustac)")
    common = ["--aoi", str(archive.aoi_path), "--start", "2019", "--end", "2021", "--max-cloud", "100", "--sync"]
    assert _run(["-q", "run", *common, "--out", str(tmp_path / "local"), "--stac-url", str(archive.items_path)]) == 0
    doc = json.loads(archive.items_path.read_text())
    with RangeServer(archive.root) as rs:
        for f in doc["features"]:
            for a in f["assets"].values():
                a["href"] = rs.url + "/" + str(Path(a["href"]).resolve().relative_to(archive.root.resolve()))
        (tmp_path / "items_http.json").write_text(json.dumps(doc))
        cfg = tmp_path / "trust.toml"  # the COG server listens on another port than the API: vouch for it
        cfg.write_text(f'[search]\nasset_hosts = ["{rs.url.split("://", 1)[1]}"]\n')
        with RustacServer([tmp_path / "items_http.json"]) as api:
            assert _run(["-q", "run", *common, "--out", str(tmp_path / "http"), "--stac-url", api.url,
                         "--config", str(cfg)]) == 0
    local = pd.read_csv(tmp_path / "local" / "summary.csv")
    http = pd.read_csv(tmp_path / "http" / "summary.csv")
    pd.testing.assert_frame_equal(local, http)
    assert (local["footprint_area_m2"] > 0).all()
    man = json.loads((tmp_path / "http" / "manifest.json").read_text())
    assert man["scenes"] == json.loads((tmp_path / "local" / "manifest.json").read_text())["scenes"]
    assert man["parameters"]["search"]["provider"].startswith("http://127.0.0.1:")


# -- Planetary Computer: SAS tokens outlived by the run ------------------------------------------------------
#
# The archive behind a stand-in of Planetary Computer: its COGs behind a blob-store proxy that demands a valid
# SAS token and serves the token endpoint (servers.SasTokens: numbered tokens, rotation, refusal), its items
# (hrefs on that proxy, unsigned) in rustac serve behind a proxy that logs every search request. The profile
# "planetary-computer" is pointed at them, so `--stac-url planetary-computer` runs the real signing code.

PC_PERIODS = ("2019-20", "2020-21", "2021-22")


@pytest.fixture(scope="module")
def pc_stand_in(archive, tmp_path_factory):
    from servers import FaultProxy, RangeServer, RustacServer, SasTokens, free_port, rustac_binary
    from geo.sources.providers import PROVIDERS, with_url

    if rustac_binary() is None:
        pytest.skip("rustac binary missing (pip install rustac)")
    root = tmp_path_factory.mktemp("pc-stand-in")
    with RangeServer(archive.root) as rs, FaultProxy(rs.url, tokens=SasTokens()) as files:
        doc = json.loads(archive.items_path.read_text())
        for f in doc["features"]:
            for a in f["assets"].values():
                a["href"] = files.url + "/" + str(Path(a["href"]).resolve().relative_to(archive.root.resolve()))
        (root / "items_pc.json").write_text(json.dumps(doc))
        port = free_port()
        with FaultProxy(f"http://127.0.0.1:{port}") as api, \
                RustacServer([root / "items_pc.json"], public_url=api.url, port=port):
            prov = with_url(PROVIDERS["planetary-computer"], api.url, token_url=f"{files.url}/api/sas/v1/token",
                            asset_hosts=(files.url,))  # the blob-store stand-in, as .blob.core.windows.net
            yield SimpleNamespace(files=files, api=api, tokens=files.tokens, provider=prov)


@pytest.fixture
def pc(pc_stand_in, monkeypatch):
    """The stand-in, counters and token schedule reset, this process's token cache empty."""
    from geo.sources.providers import PROVIDERS, clear_token_cache

    monkeypatch.setitem(PROVIDERS, "planetary-computer", pc_stand_in.provider)
    for proxy in (pc_stand_in.files, pc_stand_in.api):
        proxy.clear()
        proxy.reset_counts()
    clear_token_cache()
    yield pc_stand_in
    clear_token_cache()


def _pc_args(archive, out, *extra):
    return ["-q", "run", "--aoi", str(archive.aoi_path), "--start", "2019", "--end", "2021", "--max-cloud", "100",
            "--sync", "--tile-px", "100", "--stac-url", "planetary-computer", "--out", str(out), *extra]


def _searches(api) -> int:
    return sum(p.startswith("/search") for (_m, p, _s) in api.log)


def _assert_same_outputs(a: Path, b: Path) -> None:
    import rasterio

    pd.testing.assert_frame_equal(pd.read_csv(a / "summary.csv"), pd.read_csv(b / "summary.csv"))
    for p in PC_PERIODS:
        with rasterio.open(a / f"classmap_{p}.tif") as ra, rasterio.open(b / f"classmap_{p}.tif") as rb:
            np.testing.assert_array_equal(ra.read(), rb.read())


def _assert_no_token(folder: Path) -> None:
    """No SAS token (nor any part of one) in any file of a run folder or cache: manifest, done.json, rasters."""
    from servers import SECRET_MARK

    for p in folder.rglob("*"):
        if p.is_file():
            data = p.read_bytes()
            assert SECRET_MARK.encode() not in data and b"sig=" not in data, p


def test_planetary_computer_run_outlives_its_tokens(tmp_path, archive, pc, capsys):
    from servers import forget_cog_headers, fresh_process_caches

    """A run whose token is rotated mid-run equals an undisturbed one, and so does its resume after another
    rotation (this process still caching the dead token). Token requests: one per run while the token lives,
    plus one per rotation that a read ran into."""
    ref = tmp_path / "undisturbed"
    assert _run(_pc_args(archive, ref)) == 0
    assert pc.files.token_requests == 1 and pc.tokens.refused == 0  # one token, cached for every read
    reads = pc.tokens.accepted
    assert reads >= 24

    fresh_process_caches()  # the next run is another process
    pc.files.reset_counts()
    pc.tokens.revoke_after = reads // 3  # the token dies a third of the way through
    out = tmp_path / "rotated"
    assert _run(_pc_args(archive, out)) == 0
    assert pc.files.token_requests == 2  # the first, and one renewal after the refusal
    assert 1 <= pc.tokens.refused <= 4  # only reads in flight on the io threads when it died
    _assert_same_outputs(ref, out)
    _assert_no_token(out)
    man = json.loads((out / "manifest.json").read_text())
    assert man["status"] == "complete" and man["parameters"]["search"]["provider"] == "planetary-computer"

    # next day: one period's tasks unfinished and nothing cached; tokens rotated overnight
    for d in (out / "tasks" / PC_PERIODS[1]).glob("*/done.json"):
        d.unlink()
    redo = man["tasks"]["total"] // 3
    assert not (out / "cache").exists()  # the run folder holds no fetch cache (that is opt-in: --cache-dir)
    pc.tokens.revoke()
    pc.files.reset_counts()
    forget_cog_headers()  # only the (dead) token stays cached in this process
    man = json.loads((out / "manifest.json").read_text()) if _run(_pc_args(archive, out)) == 0 else None
    assert man["tasks"] == {"total": 3 * redo, "run": redo, "skipped": 2 * redo}
    assert pc.files.token_requests == 1 and 1 <= pc.tokens.refused <= 4  # the cached token refused once, renewed
    _assert_same_outputs(ref, out)
    _assert_no_token(out)
    assert "Error" not in capsys.readouterr().err


def test_planetary_computer_persisted_tasks_resume_on_dask_without_search(tmp_path, archive, pc):
    """Task specs planned once (hrefs unsigned, no token requested), stored, and run after a rotation without
    searching again: one in this process (its cached token refused once, renewed), the rest on a Dask
    LocalCluster whose worker processes sign with tokens of their own. Results equal an undisturbed run's."""
    import pickle

    import rasterio

    from geo.aoi import read_aoi
    from geo.config import DetectConfig, RunParams, SearchConfig
    from geo.run.executor import run_tasks
    from geo.periods import dry_seasons
    from geo.run.pipeline import RunRequest, plan_tasks, search_all
    from geo.run.tasks import is_done, run_task, write_task_result
    from servers import SECRET_MARK, forget_cog_headers

    def plan(out):
        params = RunParams(search=SearchConfig(provider="planetary-computer", max_cloud=100.0), tile_px=100,
                           detect=DetectConfig(method="rules"))
        req = RunRequest(archive.aoi_path, tuple(dry_seasons(2019, 2021)), out, params)
        aoi = read_aoi(archive.aoi_path)
        return plan_tasks(aoi, req, search_all(aoi, req))

    stored = pickle.dumps(plan(tmp_path / "run"))  # what a scheduler ships, or a resumed run would keep
    assert SECRET_MARK.encode() not in stored and b"sig=" not in stored
    assert pc.files.token_requests == 0  # planning signs nothing
    (tmp_path / "specs.pkl").write_bytes(stored)
    searches = _searches(pc.api)
    specs = pickle.loads((tmp_path / "specs.pkl").read_bytes())
    run_tasks(run_task, specs[:2], executor="sync", on_result=write_task_result)
    assert pc.files.token_requests == 1

    pc.tokens.revoke()  # the next day
    forget_cog_headers()
    specs = pickle.loads((tmp_path / "specs.pkl").read_bytes())
    todo = [s for s in specs if not is_done(s)]
    assert len(todo) == len(specs) - 2 >= 3
    run_tasks(run_task, todo[:1], executor="sync", on_result=write_task_result)
    assert pc.files.token_requests == 2 and pc.tokens.refused >= 1  # this process: refused once, renewed
    refused = pc.tokens.refused
    run_tasks(run_task, todo[1:], executor="dask", workers=2, on_result=write_task_result)
    assert 3 <= pc.files.token_requests <= 4  # one per worker process that read; none of them refused
    assert pc.tokens.refused == refused
    assert _searches(pc.api) == searches  # nothing searched again
    assert all(is_done(s) for s in specs)
    _assert_no_token(tmp_path / "run")

    ref = plan(tmp_path / "ref")  # an undisturbed run of the same tasks
    run_tasks(run_task, ref, executor="sync", on_result=write_task_result)
    for a, b in zip(ref, specs):
        assert json.loads((Path(a.out_dir) / "done.json").read_text()) == json.loads((Path(b.out_dir) / "done.json").read_text())
        with rasterio.open(Path(a.out_dir) / "classes.tif") as ra, rasterio.open(Path(b.out_dir) / "classes.tif") as rb:
            np.testing.assert_array_equal(ra.read(), rb.read())


def test_planetary_computer_refusing_server_is_one_error_line(tmp_path, archive, pc, capsys):
    """A blob store that refuses every token: one renewal, then `Error: …` on one line, exit code 3, no token."""
    from servers import SECRET_MARK

    pc.tokens.refuse_all = True
    out = tmp_path / "run"
    assert _run(_pc_args(archive, out)) == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("Error: http://127.0.0.1:"), err
    assert "refused access (HTTP 403) even with a freshly issued SAS token" in err[0]
    assert SECRET_MARK not in err[0] and "sig=" not in err[0] and "?" not in err[0]
    assert pc.files.token_requests == 2  # the first token and one renewal; no token per window after that
    assert pc.tokens.refused <= 2 * 4  # each io thread's read: the first token and the renewed one
    _assert_no_token(out)
