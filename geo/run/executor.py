"""The executor seam: run independent tasks in this process or on Dask (a LocalCluster or a given scheduler).

Results travel back to the caller as return values (through Dask when a cluster runs them); ``on_result``
runs in the calling process for each one as it arrives, so nothing a task makes has to cross a shared
filesystem. Every few seconds a ``tasks done/total, elapsed, ETA`` line is logged (INFO, logger
``geo.run.executor``), whether or not anyone watches a terminal.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from geo.errors import ClusterError, MinewatchError

log = logging.getLogger(__name__)

Progress = Callable[[int, int, Any], None]

#: Seconds a LocalCluster takes to start and close on a small machine (measured: ~6 s on 2 cores). A run
#: whose remaining tasks would take less extra time in this process than this stays in this process.
CLUSTER_STARTUP_S = 6.0

#: Seconds a Dask cluster may have no worker at all before the run stops with :class:`~geo.errors.ClusterError`
#: (``MINEWATCH_NO_WORKERS_TIMEOUT_S`` overrides it): without workers its tasks would wait forever.
NO_WORKERS_TIMEOUT_S = 60.0

#: Seconds a ``--scheduler`` address has to answer Dask's ``identity`` request before it is refused.
PROBE_TIMEOUT_S = 10.0


def default_workers() -> int:
    """Workers for a LocalCluster: one per CPU core available to this process."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def _env_seconds(name: str, default: float) -> float:
    try:
        return max(0.1, float(os.environ.get(name, default)))
    except ValueError:
        return default


def progress_interval() -> float:
    """Seconds between progress lines in the log (``MINEWATCH_PROGRESS_SECONDS``, default 5)."""
    return _env_seconds("MINEWATCH_PROGRESS_SECONDS", 5.0)


def no_workers_timeout() -> float:
    """Seconds a cluster may have no workers before the run fails (``MINEWATCH_NO_WORKERS_TIMEOUT_S``)."""
    return _env_seconds("MINEWATCH_NO_WORKERS_TIMEOUT_S", NO_WORKERS_TIMEOUT_S)


def _clock(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600:d}:{s // 60 % 60:02d}:{s % 60:02d}"


class _Heartbeat:
    """Logs ``tasks d/N done, elapsed, ETA`` every ``interval`` seconds from a background thread.

    ``done`` counts the tasks whose results were delivered, ``failed`` those that ended without one (said as
    ``tasks d/N done, f failed, …``), so a run whose cluster went away never reads as all done."""

    def __init__(self, total: int, interval: float):
        self.total, self.done, self.failed, self.interval = total, 0, 0, interval
        self.t0 = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="minewatch-progress", daemon=True)

    def line(self) -> str:
        el = time.monotonic() - self.t0
        ended = self.done + self.failed
        eta = "?" if ended == 0 else _clock(el / ended * (self.total - ended))
        failed = f", {self.failed} failed" if self.failed else ""
        return f"tasks {self.done}/{self.total} done{failed}, elapsed {_clock(el)}, ETA {eta}"

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            log.info("%s", self.line())

    def __enter__(self) -> "_Heartbeat":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        log.info("%s", self.line())


def call_task(fn: Callable[[Any], Any], task: Any) -> Any:
    """Run ``fn(task)`` where a worker runs it, so that its error reaches the client with its class.

    A minewatch error that would not survive pickling is rebuilt from its message as the nearest class that
    can be (its own, else a base class); anything else that cannot be pickled becomes a :class:`~geo.errors.ClusterError` naming the original class.
    """
    try:
        return fn(task)
    except BaseException as exc:
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        try:
            pickle.loads(pickle.dumps(exc))
        except Exception:  # noqa: BLE001 — any failure to pickle: send a plain copy instead
            for cls in type(exc).__mro__:  # the nearest minewatch class that rebuilds from its message alone
                if isinstance(cls, type) and issubclass(cls, MinewatchError):
                    try:
                        copy = cls(str(exc))
                        pickle.loads(pickle.dumps(copy))
                    except Exception:  # noqa: BLE001 — try the next class up
                        continue
                    raise copy from None
            raise ClusterError(f"a task failed with {type(exc).__name__}: {exc}") from None
        raise


def _in_process(fn, tasks, on_result, beat: _Heartbeat, progress: Progress | None, results: list, start: int) -> None:
    for i in range(start, len(tasks)):
        results[i] = on_result(tasks[i], fn(tasks[i]))
        beat.done += 1
        if progress:
            progress(beat.done, beat.total, results[i])


def _worth_a_cluster(first_task_s: float, remaining: int, n_workers: int) -> bool:
    """True when ``remaining`` tasks like the first would save more than the cluster start-up on ``n_workers``."""
    if n_workers < 2 or remaining < 2:
        return False
    saved = remaining * first_task_s * (1 - 1 / min(n_workers, remaining))
    return saved > CLUSTER_STARTUP_S


def run_tasks(fn: Callable[[Any], Any], tasks: Iterable[Any], *, executor: str = "dask", workers: int | None = None,
              scheduler: str | None = None, progress: Progress | None = None,
              on_result: Callable[[Any, Any], Any] | None = None) -> list[Any]:
    """Run ``fn`` over ``tasks`` and return the results (after ``on_result``) in task order.

    Args:
        fn: a picklable top-level function of one task.
        tasks: picklable task specs.
        executor: ``"sync"`` (in this process, one after another) or ``"dask"``.
        workers: LocalCluster worker processes (default: one per core); ignored with ``scheduler``.
        scheduler: address of an existing Dask scheduler (``tcp://host:8786``) to use instead of a LocalCluster.
        progress: called as ``progress(done, total, result)`` after each task.
        on_result: called in this process as ``on_result(task, result)`` as each result arrives (e.g. to write
            it to disk); what it returns replaces the result, so large results need not be kept.

    Without ``scheduler`` or ``workers`` the first task runs in this process; a LocalCluster starts for the rest
    only when the time it would save exceeds its start-up (:data:`CLUSTER_STARTUP_S`), so small runs never pay
    for it. Given ``workers``, a LocalCluster of that many workers runs every task.

    The first task error is raised after the remaining tasks have finished, so that every task that
    could complete has delivered its result (a rerun then only redoes the failed ones).

    Raises:
        ClusterError: the scheduler cannot be reached, or a worker died or lost a task.
    """
    tasks = list(tasks)
    total = len(tasks)
    if total == 0:
        return []
    if executor not in ("sync", "dask"):
        raise ValueError(f"executor must be 'sync' or 'dask', not {executor!r}")
    on_result = on_result or (lambda task, result: result)
    results: list[Any] = [None] * total
    with _Heartbeat(total, progress_interval()) as beat:
        if executor == "sync":
            _in_process(fn, tasks, on_result, beat, progress, results, 0)
            return results
        start = 0
        n = min(workers or default_workers(), total)
        if scheduler is None and workers is None:
            t0 = time.monotonic()
            _in_process(fn, tasks[:1], on_result, beat, progress, results, 0)
            start = 1
            if not _worth_a_cluster(time.monotonic() - t0, total - 1, n):
                log.info("running the remaining %d task(s) in this process (a cluster would not pay for its start)",
                         total - 1)
                _in_process(fn, tasks, on_result, beat, progress, results, 1)
                return results
        _on_dask(fn, tasks, start, scheduler, n, on_result, beat, progress, results)
    return results


def _worker_environ(threads: int) -> dict[str, str]:
    """Environment of LocalCluster worker processes: numeric libraries (torch, BLAS) get ``threads`` threads, and
    no ``MALLOC_TRIM_THRESHOLD_`` (Dask's default of 64 KiB multiplies page faults ~13× for array-heavy tasks)."""
    t = str(max(1, threads))
    return {"OMP_NUM_THREADS": t, "MKL_NUM_THREADS": t, "OPENBLAS_NUM_THREADS": t}


def probe_scheduler(address: str, timeout: float = PROBE_TIMEOUT_S) -> dict:
    """Ask ``address`` for Dask's ``identity``, waiting at most ``timeout`` seconds, and return the answer.

    Raises:
        ClusterError: nothing answers there, it does not answer as Dask does (another service: a Dask client
            would wait forever for its handshake), or it is a Dask worker rather than a scheduler.
    """
    import asyncio
    import socket
    from urllib.parse import urlsplit

    from distributed.comm import connect
    from distributed.security import Security

    parts = urlsplit(address if "://" in address else f"tcp://{address}")
    try:
        socket.create_connection((parts.hostname, parts.port), timeout=min(5.0, timeout)).close()
    except (OSError, ValueError, TypeError) as exc:
        why = getattr(exc, "strerror", None) or type(exc).__name__
        raise ClusterError(f"cannot reach the Dask scheduler at {address} ({why}); start it (dask scheduler) or "
                           "correct --scheduler, or leave --scheduler out to start a local cluster") from None

    async def ask() -> dict:
        comm = await connect(address, timeout=timeout, **Security().get_connection_args("client"))
        try:
            await comm.write({"op": "identity", "reply": True})
            return await comm.read()
        finally:
            comm.abort()

    got: dict = {}

    def in_own_loop() -> None:  # a thread of its own: works whether or not the caller runs an event loop
        try:
            got["answer"] = asyncio.run(asyncio.wait_for(ask(), timeout))
        except BaseException as exc:  # noqa: BLE001 — reported below as one ClusterError
            got["error"] = exc

    (t := threading.Thread(target=in_own_loop, name="minewatch-probe", daemon=True)).start()
    t.join(timeout + 5)
    answer, exc = got.get("answer"), got.get("error")
    kind = answer.get("type") if isinstance(answer, dict) else None
    if kind == "Worker":
        raise ClusterError(f"{address} is a Dask worker, not a scheduler; give its scheduler's address (--scheduler "
                           f"{answer.get('scheduler') or 'tcp://host:8786'}; a scheduler prints 'Scheduler at tcp://…')")
    if kind != "Scheduler":
        why = f"it answered as {kind!r}" if answer is not None else f"no Dask answer within {timeout:g} s" \
            if exc is None or isinstance(exc, TimeoutError) else type(exc).__name__
        raise ClusterError(f"{address} does not answer as a Dask scheduler ({why}); give the address the scheduler "
                           "prints as 'Scheduler at tcp://…' (not a worker's or another service's), or leave "
                           "--scheduler out to start a local cluster")
    return answer


def _connect(scheduler: str | None, n: int):
    from distributed import Client, LocalCluster

    if scheduler:
        probe_scheduler(scheduler)
        try:
            return Client(scheduler, timeout="20s"), None
        except Exception as exc:  # noqa: BLE001 — any failure to connect is the cluster's: one line, exit 8
            raise ClusterError(f"cannot connect to the Dask scheduler at {scheduler} ({type(exc).__name__}: "
                               f"{' '.join(str(exc).split())[:300]}); check that it is a running Dask scheduler of "
                               "the same version, or correct --scheduler") from None
    import signal

    import dask

    # Workers log nothing below CRITICAL (a task's error travels back to the client: one line there; a worker that
    # heartbeats while the cluster closes would print a traceback), and ignore SIGINT: Ctrl-C, sent to the whole
    # process group, stops this process, which closes them, instead of a KeyboardInterrupt traceback from each.
    main = threading.current_thread() is threading.main_thread()
    ctrl_c = signal.signal(signal.SIGINT, signal.SIG_IGN) if main else None
    try:
        with dask.config.set({"distributed.nanny.pre-spawn-environ": _worker_environ(default_workers() // n)}):
            cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None,
                                   silence_logs=logging.CRITICAL)
    finally:
        if ctrl_c is not None:
            signal.signal(signal.SIGINT, ctrl_c)
    return Client(cluster), cluster


@contextlib.contextmanager
def _quiet_distributed():
    """Silence distributed's own log records (ERRORs with tracebacks when the scheduler goes away) while a run uses
    Dask: the run's one ``Error:`` line says what happened. At debug level (``-vv``) its warnings and errors show."""
    level = logging.WARNING if logging.getLogger().getEffectiveLevel() <= logging.DEBUG else logging.CRITICAL + 1
    names = ["distributed", "tornado", *(n for n in list(logging.root.manager.loggerDict) if n.startswith("distributed."))]
    saved = {name: logging.getLogger(name).level for name in names}
    for name in names:
        logging.getLogger(name).setLevel(level)
    try:
        yield
    finally:
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)


class _WorkerWatch:
    """Raises :class:`~geo.errors.ClusterError` once the cluster has had no worker for ``grace`` seconds (tasks
    would wait for one forever). Asks the scheduler at most every second."""

    def __init__(self, client, scheduler: str | None, grace: float):
        self.client, self.scheduler, self.grace, self.every = client, scheduler, grace, min(1.0, grace / 4)
        self.next_check, self.none_since = 0.0, None

    def check(self, beat: _Heartbeat) -> None:
        now = time.monotonic()
        if now < self.next_check:
            return
        self.next_check = now + self.every
        try:
            n = int(self.client.sync(self.client.scheduler.identity, n_workers=0,
                                     callback_timeout=max(1.0, self.every * 5))["n_workers"])
        except Exception:  # noqa: BLE001 — unknown is not "none" (a lost scheduler is reported by its futures)
            return
        if n:
            self.none_since = None
        elif self.none_since is None:
            self.none_since = now
            log.info("the Dask scheduler has no workers; waiting up to %g s for one to join", self.grace)
        elif now - self.none_since >= self.grace:
            where, fix = (f"Dask scheduler {self.scheduler}", f"start workers (dask worker {self.scheduler})") \
                if self.scheduler else ("local Dask cluster", "its workers died (out of memory?): use fewer "
                                        "--workers, smaller --tile-px or --sync")
            raise ClusterError(f"the {where} has had no workers for {self.grace:g} s ({beat.done} of {beat.total} "
                               f"tasks done, kept); {fix} and rerun the same command to resume")


def _task_error(exc: BaseException, scheduler: str | None) -> BaseException:
    """The error a task that delivered nothing is reported with (a :class:`ClusterError` for the cluster's own)."""
    from concurrent.futures import CancelledError

    from distributed.client import FutureCancelledError
    from distributed.comm import CommClosedError

    if isinstance(exc, (FutureCancelledError, CancelledError, CommClosedError)):
        if "connection-lost" in str(exc) or isinstance(exc, CommClosedError):
            return ClusterError(f"lost the connection to the Dask scheduler{' ' + scheduler if scheduler else ''} "
                                "(did it stop?); restart it and its workers, then rerun the same command to resume "
                                "(delivered tasks are kept)")
        return ClusterError(f"the Dask cluster lost a task ({type(exc).__name__}: {exc}); check that the workers "
                            "are alive and can reach the scheduler, then rerun to resume")
    if type(exc).__name__ == "KilledWorker":
        return ClusterError(f"Dask workers died running a task ({exc}); give workers more memory "
                            "(--memory-limit) or use smaller tiles (--tile-px), then rerun to resume")
    if isinstance(exc, (ModuleNotFoundError, ImportError)):
        return ClusterError(f"a Dask worker cannot import minewatch ({exc}); install the same "
                            "minewatch version on every worker")
    return exc  # a minewatch error keeps its class and exit code


def _on_dask(fn, tasks, start, scheduler, n, on_result, beat: _Heartbeat, progress, results) -> None:
    from distributed import as_completed

    with _quiet_distributed():
        client, cluster = _connect(scheduler, n)
        try:
            todo = list(range(start, len(tasks)))
            futures = client.map(call_task, [fn] * len(todo), [tasks[i] for i in todo], pure=False)
            index = {f.key: i for i, f in zip(todo, futures)}
            ac = as_completed(futures)
            del futures  # each future is let go once its result is delivered, so workers free its memory
            watch = _WorkerWatch(client, scheduler, no_workers_timeout())
            first_error: BaseException | None = None
            while not ac.is_empty():
                if not ac.has_ready():  # nothing delivered yet: is anyone still working on it?
                    watch.check(beat)
                    time.sleep(0.05)
                    continue
                fut = next(ac)
                i = index[fut.key]
                try:
                    results[i] = on_result(tasks[i], fut.result())
                except BaseException as exc:  # noqa: BLE001 — re-raised below after the others finish
                    if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                        raise
                    first_error = first_error or _task_error(exc, scheduler)
                    beat.failed += 1
                else:
                    beat.done += 1
                    if progress:
                        progress(beat.done, beat.total, results[i])
                fut.release()
            if first_error is not None:
                raise first_error
        finally:
            client.close()
            if cluster is not None:
                cluster.close()
