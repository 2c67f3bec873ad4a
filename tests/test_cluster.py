"""Runs on a real Dask cluster whose workers do not share the client's filesystem, and progress in the log.

The fixture starts a real ``dask scheduler`` and two ``dask worker`` processes (the CLIs' modules, run with this
interpreter). Each worker runs in its own mount namespace (``unshare -m``; ``unshare -rm`` when not root) with a
private tmpfs mounted over the folder that holds the client's run folders: a worker that wrote a result there
would write it where the client never looks, as on Kubernetes or dask-gateway. The input archive stays visible
to the workers (as an object store would be).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rasterio

from geo.cli.main import main
from geo.errors import RasterError
from geo.sim.demo import write_demo_dataset
from geo.sim.scene import SimConfig
from tests.conftest import REPO

SMALL = SimConfig(width=200, height=200, margin=20, start_year=2021, end_year=2023, acquisitions_per_season=2,
                  initial_sites=4, new_sites_per_season=1, abandoned_sites=1, site_gap_m=200.0)
PERIODS = ("2021-22", "2022-23")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _unshare_prefix(hidden: Path) -> list[str] | None:
    """A command prefix that runs a program with a private tmpfs over ``hidden``, or None if this host cannot."""
    if shutil.which("unshare") is None:
        return None
    for flags in (["-m"], ["-rm"]):
        probe = subprocess.run(["unshare", *flags, "sh", "-c", f"mount -t tmpfs tmpfs '{hidden}' && touch '{hidden}/p'"],
                               capture_output=True)
        if probe.returncode == 0 and not (hidden / "p").exists():
            return ["unshare", *flags, "sh", "-c", f"mount -t tmpfs tmpfs '{hidden}' && exec \"$0\" \"$@\""]
    return None


def _env() -> dict[str, str]:
    env = dict(os.environ)
    # the repository, and tests/ (pytest imports this module as `test_cluster`: its task functions travel by name)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), str(REPO / "tests"), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


@pytest.fixture(scope="module")
def ds(tmp_path_factory):
    return write_demo_dataset(tmp_path_factory.mktemp("cluster-archive"), config=SMALL)


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    """The folder under which the client keeps its run folders (the workers see an empty tmpfs there)."""
    return tmp_path_factory.mktemp("client-runs")


@pytest.fixture(scope="module")
def cluster(runs, tmp_path_factory):
    """Address of a real scheduler with two workers that cannot see ``runs``."""
    prefix = _unshare_prefix(runs)
    if prefix is None:
        pytest.skip("cannot give Dask workers a private filesystem here (unshare -m / -rm not permitted)")
    port = _free_port()
    addr = f"tcp://127.0.0.1:{port}"
    logs = tmp_path_factory.mktemp("cluster-logs")
    procs = [subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                               "--port", str(port), "--no-dashboard"], cwd=REPO, env=_env(),
                              stdout=subprocess.DEVNULL, stderr=open(logs / "scheduler.log", "wb"))]
    for i in range(2):
        procs.append(subprocess.Popen(
            [*prefix, sys.executable, "-m", "distributed.cli.dask_worker", addr, "--nthreads", "1", "--nworkers", "1",
             "--no-dashboard", "--memory-limit", "1GB", "--local-directory", str(logs / f"w{i}"), "--name", f"w{i}"],
            cwd=REPO, env=_env(), stdout=subprocess.DEVNULL, stderr=open(logs / f"worker{i}.log", "wb")))
    from distributed import Client

    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with Client(addr, timeout="5s") as c:
                    c.wait_for_workers(2, timeout=60)
                    marker = runs / "visible-to-client"
                    marker.write_text("x")
                    seen = c.run(os.path.exists, str(marker))
                    assert seen and not any(seen.values()), f"workers see the client's run folder: {seen}"
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        yield addr
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def _args(ds, out: Path, *extra) -> list[str]:
    return ["run", "--aoi", str(ds.aoi_path), "--start", "2021", "--end", "2022", "--out", str(out),
            "--stac-url", str(ds.items_path), "--tile-px", "100", "--max-cloud", "100", *map(str, extra)]


def _run(ds, out: Path, *extra) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["-q", *_args(ds, out, *extra)])
    assert exc.value.code == 0


def test_cluster_without_shared_filesystem_equals_local_run(ds, runs, cluster, tmp_path):
    local = tmp_path / "local"
    _run(ds, local, "--sync")
    remote = runs / "remote"
    _run(ds, remote, "--scheduler", cluster)
    a, b = pd.read_csv(local / "summary.csv"), pd.read_csv(remote / "summary.csv")
    pd.testing.assert_frame_equal(a, b)
    assert (b["footprint_area_m2"] > 0).all() and (b["clear_fraction"] > 0.5).all()
    for p in PERIODS:
        with rasterio.open(local / f"classmap_{p}.tif") as ra, rasterio.open(remote / f"classmap_{p}.tif") as rb:
            np.testing.assert_array_equal(ra.read(), rb.read())
    man = json.loads((remote / "manifest.json").read_text())
    assert man["tasks"]["run"] == man["tasks"]["total"] > 2
    # resume: the client wrote the done markers, so a rerun on the cluster skips every task
    _run(ds, remote, "--scheduler", cluster)
    man = json.loads((remote / "manifest.json").read_text())
    assert man["tasks"]["run"] == 0 and man["tasks"]["skipped"] == man["tasks"]["total"]
    pd.testing.assert_frame_equal(a, pd.read_csv(remote / "summary.csv"))


def _raises_raster_error(x):
    raise RasterError(f"band {x} unreadable")


class _Unpicklable(RasterError):
    def __init__(self, message, handle):
        super().__init__(message)
        self.handle = handle


def _raises_unpicklable(x):
    raise _Unpicklable(f"tile {x} bad", handle=lambda: None)


def test_task_errors_cross_the_cluster_with_their_class(cluster):
    from geo.run.executor import run_tasks

    with pytest.raises(RasterError, match=r"band [34] unreadable"):  # the first to finish
        run_tasks(_raises_raster_error, [3, 4], scheduler=cluster)
    with pytest.raises(RasterError, match="tile 1 bad"):
        run_tasks(_raises_unpicklable, [1], scheduler=cluster)


def test_unreachable_scheduler_fails_loudly(ds, runs, capsys):
    out = runs / "unreachable"
    with pytest.raises(SystemExit) as exc:
        main(["-q", *_args(ds, out, "--scheduler", f"tcp://127.0.0.1:{_free_port()}")])
    assert exc.value.code == 8
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("Error: cannot reach the Dask scheduler"), err
    assert not (out / "summary.csv").exists()


def test_progress_lines_in_a_non_terminal_log(ds, tmp_path):
    """stderr is a pipe, not a terminal: the log still gets `tasks done/total, elapsed, ETA` lines."""
    env = _env() | {"MINEWATCH_PROGRESS_SECONDS": "0.2"}
    proc = subprocess.run([sys.executable, "-m", "geo", *_args(ds, tmp_path / "run", "--sync")], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = re.findall(r"tasks (\d+)/(\d+) done, elapsed (\d+:\d\d:\d\d), ETA (\S+)", proc.stderr)
    assert len(lines) >= 2, proc.stderr[-2000:]
    total = json.loads((tmp_path / "run" / "manifest.json").read_text())["tasks"]["total"]
    assert all(int(t) == total for _, t, _, _ in lines)
    assert lines[-1][0] == str(total)  # the last line reports every task done
    assert [int(d) for d, _, _, _ in lines] == sorted(int(d) for d, _, _, _ in lines)


def test_a_run_whose_tasks_deliver_nothing_fails_loudly(ds, tmp_path, capsys, monkeypatch):
    """Workers that return no result (another minewatch version, say): exit 8 and one Error line, no summary."""
    import geo.run.pipeline as pipeline

    monkeypatch.setattr(pipeline, "run_task", lambda spec: {"stats": {"clear_px": 0}})
    out = tmp_path / "run"
    with pytest.raises(SystemExit) as exc:
        main(["-q", *_args(ds, out, "--sync")])
    assert exc.value.code == 8
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "returned no complete result" in err[0], err
    assert not (out / "summary.csv").exists() and not list(out.rglob("done.json"))


def _pid_and_env(_x):
    return os.getpid(), os.environ.get("MALLOC_TRIM_THRESHOLD_"), os.environ.get("OMP_NUM_THREADS")


def test_small_runs_stay_in_this_process():
    """Quick tasks: no cluster is started (its start-up would cost more than it saves); results in task order."""
    from geo.run.executor import _worth_a_cluster, run_tasks

    got = run_tasks(_pid_and_env, range(5))
    assert [g[0] for g in got] == [os.getpid()] * 5
    assert not _worth_a_cluster(0.5, 5, 2) and _worth_a_cluster(30.0, 5, 2) and not _worth_a_cluster(30.0, 5, 1)


def test_local_cluster_workers_get_thread_settings_and_no_malloc_trim():
    from geo.run.executor import default_workers, run_tasks

    got = run_tasks(_pid_and_env, range(4), workers=2)
    pids = {g[0] for g in got}
    assert os.getpid() not in pids and 1 <= len(pids) <= 2
    assert all(g[1] is None for g in got), "Dask's MALLOC_TRIM_THRESHOLD_ reached the workers"
    assert all(g[2] == str(max(1, default_workers() // 2)) for g in got)


def test_the_traceback_distributed_logs_when_ctrl_c_hits_its_sync_is_dropped(caplog):
    """Ctrl-C inside distributed's ``sync()`` before its future exists makes the ``cancel`` callback it schedules fail
    with a NameError, which tornado logged with a traceback after the run's one "Interrupted" line (seen in CI). The
    same failure, made here with a real tornado loop: logged without the filter, dropped with it; another callback's
    error still shows."""
    import functools
    import logging

    from tornado.ioloop import IOLoop

    from geo.run.cluster import _drop_sync_cancel_bug

    def sync():  # distributed.utils.sync's shape: cancel reads `future`, which is assigned only later
        def cancel():
            if future is not None:
                pass
        return functools.partial(cancel)
        future = None  # noqa: F841  (never reached: `future` stays unbound, as when Ctrl-C came first)

    def other():
        raise NameError("another bug")

    def run_callbacks(*callbacks) -> list[str]:
        caplog.clear()
        loop = IOLoop()
        for cb in (*callbacks, loop.stop):
            loop.add_callback(cb)
        loop.start()
        loop.close()
        return [r.getMessage() for r in caplog.records if r.name == "tornado.application"]

    logger = logging.getLogger("tornado.application")
    installed = [f for f in logger.filters if type(f).__name__ == "_SyncCancelBug"]  # by an earlier in-process run
    for f in installed:
        logger.removeFilter(f)
    with caplog.at_level(logging.ERROR, logger="tornado.application"):
        before = run_callbacks(sync())
        _drop_sync_cancel_bug()
        _drop_sync_cancel_bug()  # installed once
        after = run_callbacks(sync(), other)
    assert len(before) == 1 and "sync.<locals>.cancel" in before[0]
    assert len(after) == 1 and "other" in after[0]
    assert sum(type(f).__name__ == "_SyncCancelBug" for f in logger.filters) == 1
