"""Reaching a Dask cluster: probing a ``--scheduler`` address, starting a LocalCluster, watching that it still has
workers, keeping distributed's own log quiet, and naming a task's cluster failure (used by :mod:`geo.run.executor`)."""

from __future__ import annotations

import contextlib
import logging
import threading
import time

from geo.errors import ClusterError

log = logging.getLogger("geo.run.executor")  # one logger for the run's progress and cluster messages

#: Seconds a ``--scheduler`` address has to answer Dask's ``identity`` request before it is refused.
PROBE_TIMEOUT_S = 10.0


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


def _connect(scheduler: str | None, n: int, threads: int = 1):
    """A Dask client of ``scheduler``, or of a new LocalCluster of ``n`` workers with ``threads`` BLAS/torch threads
    each; returns ``(client, cluster or None)``."""
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
        with dask.config.set({"distributed.nanny.pre-spawn-environ": _worker_environ(threads)}):
            cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None,
                                   silence_logs=logging.CRITICAL)
    finally:
        if ctrl_c is not None:
            signal.signal(signal.SIGINT, ctrl_c)
    return Client(cluster), cluster


class _SyncCancelBug(logging.Filter):
    """Drops one record: when Ctrl-C interrupts distributed's ``sync()`` before it has made its future, the
    ``cancel`` callback it schedules fails with a ``NameError`` that tornado logs with a traceback, from the event
    loop's thread, after the run has already said "Interrupted" (seen once in CI with distributed 2025). Anything
    else passes."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not (isinstance(exc, NameError) and "sync.<locals>.cancel" in record.getMessage())


def _drop_sync_cancel_bug() -> None:
    """Install :class:`_SyncCancelBug` on tornado's callback logger, once, for the life of the process (the record
    can come after a run's :func:`_quiet_distributed` block has ended)."""
    logger = logging.getLogger("tornado.application")
    if not any(isinstance(f, _SyncCancelBug) for f in logger.filters):
        logger.addFilter(_SyncCancelBug())


@contextlib.contextmanager
def _quiet_distributed():
    """Silence distributed's own log records (ERRORs with tracebacks when the scheduler goes away) while a run uses
    Dask: the run's one ``Error:`` line says what happened. At debug level (``-vv``) its warnings and errors show."""
    _drop_sync_cancel_bug()
    level = logging.WARNING if logging.getLogger().getEffectiveLevel() <= logging.DEBUG else logging.CRITICAL + 1
    names = ["distributed", "tornado", *(n for n in list(logging.root.manager.loggerDict)
                                         if n.startswith(("distributed.", "tornado.")))]
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

    def check(self, beat) -> None:  # beat: geo.run.executor._Heartbeat (done, total)
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
