"""The executor seam: run independent tasks in-process or on Dask (a LocalCluster or a given scheduler)."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from typing import Any

log = logging.getLogger(__name__)

Progress = Callable[[int, int, Any], None]


def default_workers() -> int:
    """Workers for a LocalCluster: one per CPU core available to this process."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def run_tasks(fn: Callable[[Any], Any], tasks: Iterable[Any], *, executor: str = "dask", workers: int | None = None,
              scheduler: str | None = None, progress: Progress | None = None) -> list[Any]:
    """Run ``fn`` over ``tasks`` and return the results in task order.

    Args:
        fn: a picklable top-level function of one task.
        tasks: picklable task specs.
        executor: ``"sync"`` (in this process, one after another) or ``"dask"``.
        workers: LocalCluster worker processes (default: one per core); ignored with ``scheduler``.
        scheduler: address of an existing Dask scheduler (``tcp://host:8786``) to use instead of a LocalCluster.
        progress: called as ``progress(done, total, result)`` after each task.

    The first task error is raised after the remaining tasks have finished, so that every task that
    could complete has written its result (a rerun then only redoes the failed ones).
    """
    tasks = list(tasks)
    total = len(tasks)
    if total == 0:
        return []
    if executor == "sync" or (executor == "dask" and scheduler is None and total == 1):
        out = []
        for i, t in enumerate(tasks, start=1):
            out.append(fn(t))
            if progress:
                progress(i, total, out[-1])
        return out
    if executor != "dask":
        raise ValueError(f"executor must be 'sync' or 'dask', not {executor!r}")
    from distributed import Client, LocalCluster, as_completed

    for name in list(logging.root.manager.loggerDict):  # distributed configures chatty loggers on import
        if name.startswith("distributed"):
            logging.getLogger(name).setLevel(max(logging.WARNING, logging.getLogger().level))

    cluster = None
    if scheduler:
        client = Client(scheduler, timeout="20s")
    else:
        n = min(workers or default_workers(), total)
        cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None,
                               silence_logs=logging.ERROR)
        client = Client(cluster)
    try:
        futures = client.map(fn, tasks, pure=False)
        index = {f.key: i for i, f in enumerate(futures)}
        results: list[Any] = [None] * total
        first_error: BaseException | None = None
        done = 0
        for fut in as_completed(futures):
            done += 1
            try:
                results[index[fut.key]] = fut.result()
            except BaseException as exc:  # noqa: BLE001 — re-raised below after the others finish
                first_error = first_error or exc
            if progress:
                progress(done, total, results[index[fut.key]])
        if first_error is not None:
            raise first_error
        return results
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
