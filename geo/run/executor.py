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

log = logging.getLogger(__name__)

Progress = Callable[[int, int, Any], None]

#: Seconds a LocalCluster takes to start and close on a small machine (measured: ~6 s on 2 cores). A run
#: whose remaining tasks would take less extra time in this process than this stays in this process.
CLUSTER_STARTUP_S = 6.0


def default_workers() -> int:
    """Workers for a LocalCluster: one per CPU core available to this process."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def progress_interval() -> float:
    """Seconds between progress lines in the log (``MINEWATCH_PROGRESS_SECONDS``, default 5)."""
    try:
        return max(0.1, float(os.environ.get("MINEWATCH_PROGRESS_SECONDS", "5")))
    except ValueError:
        return 5.0


def _clock(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600:d}:{s // 60 % 60:02d}:{s % 60:02d}"


class _Heartbeat:
    """Logs ``tasks d/N done, elapsed, ETA`` every ``interval`` seconds from a background thread."""

    def __init__(self, total: int, interval: float):
        self.total, self.done, self.interval = total, 0, interval
        self.t0 = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="minewatch-progress", daemon=True)

    def line(self) -> str:
        el = time.monotonic() - self.t0
        eta = "?" if self.done == 0 else _clock(el / self.done * (self.total - self.done))
        return f"tasks {self.done}/{self.total} done, elapsed {_clock(el)}, ETA {eta}"

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


def _connect(scheduler: str | None, n: int):
    from distributed import Client, LocalCluster

    if scheduler:
        try:
            return Client(scheduler, timeout="20s"), None
        except (OSError, TimeoutError) as exc:
            raise ClusterError(f"cannot reach the Dask scheduler at {scheduler} ({exc}); start it "
                               "(dask scheduler) or correct --scheduler") from None
    import dask

    with dask.config.set({"distributed.nanny.pre-spawn-environ": _worker_environ(default_workers() // n)}):
        # workers log nothing below CRITICAL: a task's error travels back to the client (one line there), and on a
        # loaded machine a worker that heartbeats while the cluster closes would print a traceback to the user
        cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None,
                               silence_logs=logging.CRITICAL)
    return Client(cluster), cluster


def _on_dask(fn, tasks, start, scheduler, n, on_result, beat: _Heartbeat, progress, results) -> None:
    from concurrent.futures import CancelledError

    from distributed import as_completed
    from distributed.client import FutureCancelledError
    from distributed.comm import CommClosedError

    for name in list(logging.root.manager.loggerDict):  # distributed configures chatty loggers on import
        if name.startswith("distributed"):
            logging.getLogger(name).setLevel(max(logging.WARNING, logging.getLogger().level))
    client, cluster = _connect(scheduler, n)
    try:
        todo = list(range(start, len(tasks)))
        futures = client.map(call_task, [fn] * len(todo), [tasks[i] for i in todo], pure=False)
        index = {f.key: i for i, f in zip(todo, futures)}
        ac = as_completed(futures)
        del futures  # each future is let go once its result is delivered, so workers free its memory
        first_error: BaseException | None = None
        for fut in ac:
            i = index[fut.key]
            try:
                results[i] = on_result(tasks[i], fut.result())
            except MinewatchError as exc:
                first_error = first_error or exc
            except (FutureCancelledError, CancelledError, CommClosedError) as exc:
                first_error = first_error or ClusterError(
                    f"the Dask cluster lost a task ({type(exc).__name__}: {exc}); check that the workers are alive "
                    "and can reach the scheduler, then rerun to resume")
            except BaseException as exc:  # noqa: BLE001 — re-raised below after the others finish
                if type(exc).__name__ == "KilledWorker":
                    exc = ClusterError(f"Dask workers died running a task ({exc}); give workers more memory "
                                       "(--memory-limit) or use smaller tiles (--tile-px), then rerun to resume")
                elif isinstance(exc, (ModuleNotFoundError, ImportError)):
                    exc = ClusterError(f"a Dask worker cannot import minewatch ({exc}); install the same "
                                       "minewatch version on every worker")
                first_error = first_error or exc
            fut.release()
            beat.done += 1
            if progress:
                progress(beat.done, beat.total, results[i])
        if first_error is not None:
            raise first_error
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
