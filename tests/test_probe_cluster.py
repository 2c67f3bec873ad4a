"""Runs on a Dask cluster that stops working, and a run stopped by SIGTERM: each ends with one line and its exit code.

Found by probing ``minewatch run --scheduler`` against real ``dask scheduler`` / ``dask worker`` processes: a
scheduler without workers (or whose workers all died) made the run wait forever; a non-Dask service at the address
hung it, a worker's address gave a traceback; a scheduler killed mid-run printed distributed's own tracebacks and
``tasks 32/32 done`` although most had failed; SIGTERM left the manifest ``running`` and the lock behind.
Each test runs ``minewatch`` as a subprocess (its real stderr, no pytest log capture) with a deadline, so a hang
fails the test instead of stalling the suite.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from geo.sim.demo import write_demo_dataset
from tests.conftest import REPO
from tests.test_cluster import SMALL, _env, _free_port

#: A worker preload (script text, run in each worker) that makes every task take 0.4 s longer, so that a run of 32
#: tasks on one worker cannot finish in the moment between its first delivered task and the test's kill.
#: (Dask imports a preload twice: the original is kept once.)
SLOW_TASKS = ("import time, geo.run.tasks as t\n_run = t.__dict__.setdefault('_unslowed_run_task', t.run_task)\n"
              "def run_task(spec):\n    time.sleep(0.4)\n    return _run(spec)\nt.run_task = run_task\n")


@pytest.fixture(scope="module")
def ds(tmp_path_factory):
    return write_demo_dataset(tmp_path_factory.mktemp("probe-cluster-archive"), config=SMALL)


def _args(ds, out: Path, *extra) -> list[str]:
    """A run of 32 tasks (2 seasons × 16 tiles of 64 px) with the rules only (no model to load)."""
    return ["run", "--aoi", str(ds.aoi_path), "--start", "2021", "--end", "2022", "--out", str(out),
            "--stac-url", str(ds.items_path), "--tile-px", "64", "--max-cloud", "100", "--method", "rules",
            *map(str, extra)]


def _minewatch(args: list[str], **env) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "geo", *args], cwd=REPO, env=_env() | env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)


def _finish(proc: subprocess.Popen, timeout: float) -> str:
    """stderr of ``proc`` once it ends; the test fails (and the process group is killed) if it runs past ``timeout``."""
    try:
        return proc.communicate(timeout=timeout)[1]
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        err = proc.communicate()[1]
        pytest.fail(f"minewatch still running after {timeout} s (a hang); its stderr ends: {err[-1500:]}")


def _wait_for_first_task(proc: subprocess.Popen, out: Path, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not any((out / "tasks").glob("*/*/done.json")):
        assert proc.poll() is None, f"run ended before its first task: {proc.communicate()[1][-2000:]}"
        assert time.monotonic() < deadline, "no task finished in time"
        time.sleep(0.01)


def _stop(*procs: subprocess.Popen) -> None:
    for p in procs:
        if p.poll() is None:
            p.kill()
    for p in procs:
        p.wait(timeout=30)


@contextmanager
def _scheduler(logs: Path):
    """Address of a real ``dask scheduler`` with no workers (killed after the test)."""
    port = _free_port()
    addr = f"tcp://127.0.0.1:{port}"
    proc = subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port",
                             str(port), "--no-dashboard"], cwd=REPO, env=_env(), stdout=subprocess.DEVNULL,
                            stderr=open(logs / f"scheduler-{port}.log", "wb"))
    try:
        _wait_for_workers(addr, 0)
        yield addr, proc
    finally:
        _stop(proc)


def _worker(addr: str, logs: Path, *extra) -> subprocess.Popen:
    """A real ``dask worker`` (no nanny: killing it kills the worker) with one thread, that slows tasks down."""
    return subprocess.Popen(
        [sys.executable, "-m", "distributed.cli.dask_worker", addr, "--no-nanny", "--nthreads", "1", "--no-dashboard",
         "--memory-limit", "1GB", "--local-directory", str(logs / "w"), "--preload", SLOW_TASKS, *map(str, extra)],
        cwd=REPO, env=_env(), stdout=subprocess.DEVNULL, stderr=open(logs / f"worker-{time.time_ns()}.log", "wb"))


def _wait_for_workers(addr: str, n: int, timeout: float = 60) -> None:
    from distributed import Client

    deadline = time.monotonic() + timeout
    while True:
        try:
            with Client(addr, timeout="5s") as c:
                if n:
                    c.wait_for_workers(n, timeout=timeout)
            return
        except OSError:
            assert time.monotonic() < deadline, f"the scheduler at {addr} did not start"
            time.sleep(0.2)


def _manifest(out: Path) -> dict:
    return json.loads((out / "manifest.json").read_text())


def _done(out: Path) -> set[Path]:
    return set((out / "tasks").glob("*/*/done.json"))


def test_scheduler_without_workers_fails_after_the_grace_period(ds, tmp_path):
    """Before: `tasks 0/32 done … ETA ?` forever, manifest `running`. Now: exit 8 after the grace period
    (MINEWATCH_NO_WORKERS_TIMEOUT_S), one line naming the scheduler and the `dask worker` command."""
    out = tmp_path / "run"
    with _scheduler(tmp_path) as (addr, _):
        t0 = time.monotonic()
        proc = _minewatch(["-q", *_args(ds, out, "--scheduler", addr)], MINEWATCH_NO_WORKERS_TIMEOUT_S="2")
        err = _finish(proc, timeout=60)
    assert proc.returncode == 8, err
    lines = err.strip().splitlines()
    assert lines == [f"Error: the Dask scheduler {addr} has had no workers for 2 s (0 of 32 tasks done, kept); start "
                     f"workers (dask worker {addr}) and rerun the same command to resume"], err
    assert time.monotonic() - t0 < 45
    man = _manifest(out)
    assert man["status"] == "failed" and "has had no workers for 2 s" in man["error"]
    assert not (out / ".minewatch.lock").exists()


def test_workers_dying_mid_run_fail_and_keep_the_delivered_tasks(ds, tmp_path):
    """Every worker killed after the first task: before, the run waited forever at `tasks n/32`; now exit 8 after
    the grace period, and the tasks delivered before stay (the line counts them; a rerun skips them)."""
    out = tmp_path / "run"
    with _scheduler(tmp_path) as (addr, _):
        worker = _worker(addr, tmp_path)
        try:
            _wait_for_workers(addr, 1)
            proc = _minewatch(["-q", *_args(ds, out, "--scheduler", addr)], MINEWATCH_NO_WORKERS_TIMEOUT_S="2")
            _wait_for_first_task(proc, out)
            worker.kill()
            err = _finish(proc, timeout=60)
        finally:
            _stop(worker)
    assert proc.returncode == 8, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    m = re.fullmatch(rf"Error: the Dask scheduler {addr} has had no workers for 2 s \((\d+) of 32 tasks done, kept\); "
                     rf"start workers \(dask worker {addr}\) and rerun the same command to resume", lines[0])
    assert m, lines[0]
    kept = _done(out)
    assert 1 <= int(m.group(1)) == len(kept) < 32
    assert _manifest(out)["status"] == "failed" and not (out / ".minewatch.lock").exists()


def test_an_address_that_is_not_a_scheduler_is_refused_quickly(ds, tmp_path):
    """Before: a web server's address hung the run at `tasks 0/32` (120 s+); a worker's address gave a traceback
    (`Worker.identity() got an unexpected keyword argument 'n_workers'`, exit 1). Now: exit 8, one line each,
    before the run folder is made."""
    web_port = _free_port()
    web = subprocess.Popen([sys.executable, "-m", "http.server", str(web_port), "--bind", "127.0.0.1"],
                           cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    got = {}
    try:
        with _scheduler(tmp_path) as (addr, _):
            worker_port = _free_port()
            worker = _worker(addr, tmp_path, "--worker-port", worker_port)
            try:
                _wait_for_workers(addr, 1)
                for name, port in (("web", web_port), ("worker", worker_port)):
                    t0 = time.monotonic()
                    proc = _minewatch(["-q", *_args(ds, tmp_path / name, "--scheduler", f"tcp://127.0.0.1:{port}")])
                    err = _finish(proc, timeout=60)
                    got[name] = (proc.returncode, err.strip().splitlines(), time.monotonic() - t0)
            finally:
                _stop(worker)
    finally:
        _stop(web)
    code, lines, took = got["web"]
    assert code == 8 and lines == [
        f"Error: tcp://127.0.0.1:{web_port} does not answer as a Dask scheduler (no Dask answer within 10 s); give the "
        "address the scheduler prints as 'Scheduler at tcp://…' (not a worker's or another service's), or leave "
        "--scheduler out to start a local cluster"], lines
    assert took < 40
    code, lines, took = got["worker"]
    assert code == 8 and lines == [
        f"Error: tcp://127.0.0.1:{worker_port} is a Dask worker, not a scheduler; give its scheduler's address "
        f"(--scheduler {addr}; a scheduler prints 'Scheduler at tcp://…')"], lines
    assert took < 30
    assert not (tmp_path / "web").exists() and not (tmp_path / "worker").exists()


def test_scheduler_killed_mid_run_gives_one_error_line_and_counts_failures(ds, tmp_path):
    """Before: exit 8 and one Error line, but distributed's ERROR records with two tracebacks (~40 lines) before
    it, and `tasks 32/32 done` although most had failed. Now no traceback, and failed tasks are not counted done."""
    out = tmp_path / "run"
    with _scheduler(tmp_path) as (addr, sched):
        worker = _worker(addr, tmp_path)
        try:
            _wait_for_workers(addr, 1)
            proc = _minewatch(_args(ds, out, "--scheduler", addr), MINEWATCH_PROGRESS_SECONDS="0.5")
            _wait_for_first_task(proc, out)
            sched.kill()
            err = _finish(proc, timeout=90)
        finally:
            _stop(worker)
    assert proc.returncode == 8, err
    assert "Traceback" not in err and " ERROR " not in err, err
    errors = [ln for ln in err.splitlines() if ln.startswith("Error:")]
    assert errors == [f"Error: lost the connection to the Dask scheduler {addr} (did it stop?); restart it and its "
                      "workers, then rerun the same command to resume (delivered tasks are kept)"], err
    assert err.rstrip().endswith(errors[0])
    last = re.findall(r"tasks (\d+)/32 done(?:, (\d+) failed)?, elapsed", err)[-1]
    done, failed = int(last[0]), int(last[1] or 0)
    assert done == len(_done(out)) and failed == 32 - done and failed > 0, last
    assert _manifest(out)["status"] == "failed"


@pytest.mark.parametrize("how", ["sigterm", "ctrl-c"])
def test_sigterm_stops_the_run_like_ctrl_c(ds, tmp_path, how):
    """SIGTERM (timeout, kill, Slurm, docker stop) to `minewatch run --workers 2` once tasks finish: before, exit 143
    with no message, the manifest left `running` and `.minewatch.lock` behind. Now the same way out as Ctrl-C: one
    line, exit 143, manifest `interrupted` with the reason, the lock removed, the delivered tasks kept.
    Ctrl-C (SIGINT to the whole process group, as a terminal sends it) kept exit 130 but each LocalCluster worker
    printed a KeyboardInterrupt traceback (4 of them); now only the one line."""
    out = tmp_path / "run"
    proc = _minewatch(["-q", *_args(ds, out, "--workers", "2")])
    try:
        _wait_for_first_task(proc, out)
        if how == "sigterm":
            proc.send_signal(signal.SIGTERM)  # to minewatch alone, as `timeout` and `docker stop` send it
        else:
            os.killpg(proc.pid, signal.SIGINT)
        err = _finish(proc, timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    man = _manifest(out)
    if how == "sigterm":
        assert proc.returncode == 143, err
        assert err.strip().splitlines() == ["Terminated (SIGTERM); finished results are kept, rerun the same command "
                                            "to resume."], err
        assert man["error"] == ("Terminated: stopped by SIGTERM; finished tasks are kept, rerun the same command to "
                                "resume"), man["error"]
    else:
        assert proc.returncode == 130, err
        assert err.strip().splitlines() == ["Interrupted; finished results are kept, rerun the same command to "
                                            "resume."], err
        assert man["error"].startswith("KeyboardInterrupt: interrupted (Ctrl-C)"), man["error"]
    assert man["status"] == "interrupted", man
    assert not (out / ".minewatch.lock").exists()
    kept = _done(out)
    assert 1 <= len(kept) < 32
    deadline = time.monotonic() + 20  # the LocalCluster's worker processes went with it
    while True:
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            break
        assert time.monotonic() < deadline, "worker processes outlived the terminated run"
        time.sleep(0.2)
