"""Opt-in, size-capped cache of fetched raster windows: one compressed file per (asset, grid, resampling).

A run uses it only when given ``--cache-dir``; it is never inside the run folder by default. Entries hold the
source data as read (integer DN: uint16 reflectance DN, uint8 SCL; 0 = nodata), deflated, not float32 warps,
so an entry is about the size of the COG bytes it saves. When the folder grows past its cap (default
:data:`DEFAULT_MAX_BYTES`) the least recently used entries are deleted.

Entries are written to a temporary file in the same folder and moved into place with :func:`os.replace`, so a
crash never leaves a half-written entry under the final name (not fsynced: an entry lost in a power cut is a
miss). A file that cannot be read back counts as a miss and is removed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import zlib
from pathlib import Path

import numpy as np

from geo.errors import OutputError, disk_full_error
from geo.fsutil import ensure_room

log = logging.getLogger(__name__)

#: Bump when the meaning of cached arrays changes (invalidates old entries). Old ``.npy`` entries (float32) are
#: never read: entries are ``.win`` files now. (models.stac_scenes keys its composites with cache_key too.)
CACHE_VERSION = 1

#: Default size cap of a window cache folder: 5 GiB.
DEFAULT_MAX_BYTES = 5 << 30

_SUFFIX = ".win"


def cache_key(**parts) -> str:
    """A stable hex key from JSON-able parts (never include secrets: hrefs go in without query)."""
    blob = json.dumps({"v": CACHE_VERSION, **parts}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:40]


def _encode(arr: np.ndarray) -> bytes:
    head = json.dumps({"dtype": arr.dtype.str, "shape": list(arr.shape)}).encode()
    return len(head).to_bytes(4, "little") + head + zlib.compress(np.ascontiguousarray(arr).tobytes(), 6)


def _decode(blob: bytes) -> np.ndarray:
    n = int.from_bytes(blob[:4], "little")
    head = json.loads(blob[4:4 + n])
    return np.frombuffer(zlib.decompress(blob[4 + n:]), dtype=np.dtype(head["dtype"])).reshape(head["shape"]).copy()


class WindowCache:
    """A folder of cached integer arrays, deflated, capped at ``max_bytes``.

    Attributes:
        root: the folder (created on first write).
        max_bytes: size cap; after a write that passes it, the least recently used entries go until the
            folder is under 90 % of it. Several processes may share a folder: each enforces the cap.
        hits: entries served since creation.
        misses: lookups that found nothing usable.
    """

    def __init__(self, root: str | Path, max_bytes: int | None = None):
        self.root = Path(root)
        self.max_bytes = DEFAULT_MAX_BYTES if max_bytes is None else int(max_bytes)
        self.hits = 0
        self.misses = 0
        self._size: int | None = None  # this process's running estimate of the folder's size

    def path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}{_SUFFIX}"

    def get(self, key: str) -> np.ndarray | None:
        p = self.path(key)
        try:
            arr = _decode(p.read_bytes())
        except FileNotFoundError:
            self.misses += 1
            return None
        except (OSError, ValueError, KeyError, zlib.error) as exc:
            log.warning("cache entry %s is unreadable (%s); fetching again", p.name, exc)
            p.unlink(missing_ok=True)
            self.misses += 1
            return None
        try:
            os.utime(p)  # most recently used: evicted last
        except OSError:
            pass
        self.hits += 1
        return arr

    @staticmethod
    def read_entry(path: str | Path) -> np.ndarray:
        """The array an entry file holds (raises ValueError/OSError if it is damaged)."""
        try:
            return _decode(Path(path).read_bytes())
        except (KeyError, zlib.error) as exc:
            raise ValueError(f"{path} is not a window cache entry ({exc})") from None

    def put(self, key: str, arr: np.ndarray) -> Path:
        p = self.path(key)
        blob = _encode(arr)
        try:
            p.parent.mkdir(parents=True, exist_ok=True)
            ensure_room(p.parent, arr.nbytes, f"the window cache {self.root}")
            fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=_SUFFIX, dir=p.parent)
        except OutputError:
            raise
        except OSError as exc:  # not a folder, no permission: the user's --cache-dir, not a bug
            raise OutputError(f"cannot write the window cache {self.root} ({exc.strerror or exc}); choose a writable "
                              "--cache-dir (on the machine running the tasks) or leave it out") from None
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(blob)
            os.replace(tmp, p)
        except BaseException as exc:
            Path(tmp).unlink(missing_ok=True)
            full = disk_full_error(exc, f"the window cache {self.root}")
            if full is not None:
                raise full from None
            raise
        if self._size is None:
            self._size = self.size()
        else:
            self._size += len(blob)
        if self._size > self.max_bytes:
            self.evict()
        return p

    def size(self) -> int:
        """Bytes held by complete entries."""
        return sum(q.stat().st_size for q in self.entries())

    def evict(self) -> int:
        """Delete least recently used entries until the folder is under 90 % of the cap; return how many."""
        stats = []
        for q in self.entries():
            try:
                st = q.stat()
            except FileNotFoundError:  # another process evicted it
                continue
            stats.append((st.st_mtime_ns, st.st_size, q))
        stats.sort()
        total = sum(s for _, s, _ in stats)
        goal, n = int(self.max_bytes * 0.9), 0
        for _, sz, q in stats:
            if total <= goal:
                break
            q.unlink(missing_ok=True)
            total -= sz
            n += 1
        self._size = total
        if n:
            log.info("window cache %s: removed %d least recently used entries to stay under %.1f GB", self.root, n,
                     self.max_bytes / 1e9)
        return n

    def entries(self) -> list[Path]:
        """Complete entries (temporary files excluded)."""
        return sorted(q for q in self.root.glob(f"*/*{_SUFFIX}") if not q.name.startswith(".tmp-"))

    def temporaries(self) -> list[Path]:
        """Leftover temporary files (there should be none)."""
        return sorted(self.root.glob("*/.tmp-*"))
