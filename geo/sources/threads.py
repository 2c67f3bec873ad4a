"""Process-wide reader threads.

Window reads (:func:`geo.sources.load.load_stack`) run on threads that live as long as the process instead of
a pool made and dropped per load. GDAL keeps state per thread: ``/vsicurl/`` caches its curl connections per
thread, and CPL's error context and thread-local config are torn down as a thread exits. With a pool per load,
each load left the connections of threads that no longer exist behind, and thread teardown could overlap the next
load's GDAL calls on other threads. A whole-process crash (SIGSEGV) was seen once in CI during a test reading
through GDAL's ``/vsicurl/``; its cause was not established, and threads ending mid-process is the hazard this
removes.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

_pools: dict[tuple[int, int], ThreadPoolExecutor] = {}
_lock = threading.Lock()


def window_pool(workers: int) -> ThreadPoolExecutor:
    """The process-wide pool of ``workers`` threads (at least one) that reads windows: one per size, and a new one
    in a child process (a forked copy of a pool has no threads)."""
    key = (os.getpid(), max(1, int(workers)))
    with _lock:
        pool = _pools.get(key)
        if pool is None:
            pool = _pools[key] = ThreadPoolExecutor(key[1], thread_name_prefix="cog-window")
        return pool
