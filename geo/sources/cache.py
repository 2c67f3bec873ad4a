"""On-disk cache of fetched raster windows: one ``.npy`` per (asset, grid, resampling).

Entries are written to a temporary file in the same folder, flushed, fsynced and moved into place
with :func:`os.replace`, so a crash or a failed fetch never leaves a half-written entry under the
final name. A file that cannot be read back (damaged outside minewatch) counts as a miss and is
removed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path

import numpy as np

from geo.errors import disk_full_error
from geo.fsutil import ensure_room

log = logging.getLogger(__name__)

#: Bump when the meaning of cached arrays changes (invalidates old entries).
CACHE_VERSION = 1


def cache_key(**parts) -> str:
    """A stable hex key from JSON-able parts (never include secrets: hrefs go in without query)."""
    blob = json.dumps({"v": CACHE_VERSION, **parts}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:40]


class WindowCache:
    """A folder of cached arrays.

    Attributes:
        root: the folder (created on first write).
        hits: entries served since creation.
        misses: lookups that found nothing usable.
    """

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.hits = 0
        self.misses = 0

    def path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.npy"

    def get(self, key: str) -> np.ndarray | None:
        p = self.path(key)
        if not p.exists():
            self.misses += 1
            return None
        try:
            arr = np.load(p, allow_pickle=False)
        except (OSError, ValueError, EOFError) as exc:
            log.warning("cache entry %s is unreadable (%s); fetching again", p.name, exc)
            p.unlink(missing_ok=True)
            self.misses += 1
            return None
        self.hits += 1
        return arr

    def put(self, key: str, arr: np.ndarray) -> Path:
        p = self.path(key)
        p.parent.mkdir(parents=True, exist_ok=True)
        ensure_room(p.parent, arr.nbytes, f"the window cache {self.root}")
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".npy", dir=p.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                np.save(f, np.ascontiguousarray(arr), allow_pickle=False)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, p)
        except BaseException as exc:
            Path(tmp).unlink(missing_ok=True)
            full = disk_full_error(exc, f"the window cache {self.root}")
            if full is not None:
                raise full from None
            raise
        return p

    def entries(self) -> list[Path]:
        """Complete entries (temporary files excluded)."""
        return sorted(q for q in self.root.glob("*/*.npy") if not q.name.startswith(".tmp-"))

    def temporaries(self) -> list[Path]:
        """Leftover temporary files (there should be none)."""
        return sorted(self.root.glob("*/.tmp-*"))
