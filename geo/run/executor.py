"""The executor seam: run independent tasks in this process or on Dask (a LocalCluster or a given scheduler).

Results travel back to the caller as return values (through Dask when a cluster runs them); ``on_result``
runs in the calling process for each one as it arrives, so nothing a task makes has to cross a shared
filesystem. Every few seconds a ``tasks done/total, elapsed, ETA`` line is logged (INFO, logger
``geo.run.executor``), whether or not anyone watches a terminal.
"""

from __future__ import annotations

import logging
import os
import pickle
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from geo.errors import ClusterError, MinewatchError
from geo.run.cluster import _connect, _quiet_distributed, _task_error, _WorkerWatch

log = logging.getLogger(__name__)

Progress = Callable[[int, int, Any], None]

#: Seconds a LocalCluster takes to start and close on a small machine (measured: ~6 s on 2 cores). A run
#: whose remaining tasks would take less extra time in this process than this stays in this process.
CLUSTER_STARTUP_S = 6.0

#: Seconds a Dask cluster may have no worker at all before the run stops with :class:`~geo.errors.ClusterError`
#: (``MINEWATCH_NO_WORKERS_TIMEOUT_S`` overrides it): without workers its tasks would wait forever.
NO_WORKERS_TIMEOUT_S = 60.0


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


def _on_dask(fn, tasks, start, scheduler, n, on_result, beat: _Heartbeat, progress, results) -> None:
    from distributed import as_completed

    with _quiet_distributed():
        client, cluster = _connect(scheduler, n, threads=default_workers() // n)
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
