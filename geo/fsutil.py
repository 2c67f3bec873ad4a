"""Atomic file writing: a result is either absent or complete, never half-written."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from geo.errors import OutputError, UsageError, disk_full_error

#: Infix of every temporary name (``.<name><mark>XXXX<suffix>``); a file holding it is unfinished.
PARTIAL_MARK = ".partial-"


@contextlib.contextmanager
def atomic_path(path: str | Path, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is renamed onto ``path`` (atomic on POSIX).

    The temporary name keeps ``path``'s suffix so writers that pick a driver by extension work.
    On error the temporary file is removed and ``path`` is left untouched.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}{PARTIAL_MARK}", suffix=suffix or path.suffix, dir=path.parent)
    except OSError as exc:
        raise OutputError(f"cannot write in {path.parent} ({exc.strerror}); choose a writable --out folder") from None
    os.close(fd)
    os.unlink(tmp)  # writers (GDAL) want to create the file themselves
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    except OSError as exc:
        _cleanup(tmp_path)
        if isinstance(exc, OutputError):
            raise
        full = disk_full_error(exc, str(path))
        if full is not None:
            raise full from None
        raise OutputError(f"could not write {path} ({exc.strerror or exc}); check free disk space and permissions") from None
    except BaseException:
        _cleanup(tmp_path)
        raise


def check_writable(path: str | Path, option: str, *, folder: bool = False) -> None:
    """Refuse, before any work is done, an output that could not be written at the end: a file path that is a
    folder, or a path whose folder cannot be made or written to (a command must not compute for minutes and then
    fail). With ``folder``, ``path`` is itself the folder to write into. Creates nothing: a missing folder is
    checked through its nearest existing parent (the writer makes it).

    Raises:
        OutputError: naming ``option`` (e.g. ``--json``) and the reason.
    """
    import errno

    path = Path(path)
    if not folder and path.is_dir():
        raise OutputError(f"{option} {path} is a folder; give a file path")
    where = path.absolute() if folder else path.absolute().parent
    while not where.exists() and where != where.parent:
        where = where.parent
    try:
        if not where.is_dir():
            raise OSError(errno.ENOTDIR, os.strerror(errno.ENOTDIR))
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}{PARTIAL_MARK}", dir=where)
    except OSError as exc:
        raise OutputError(f"cannot write {option} {path} ({exc.strerror or exc}); choose a writable path") from None
    os.close(fd)
    os.unlink(tmp)


def check_distinct(outputs: dict[str, str | Path | None], inputs: dict[str, str | Path | None] | None = None) -> None:
    """Refuse, before any work is done, two outputs on one path, or an output on one of the command's inputs (a
    ``--json`` that would overwrite the image being scored, a ``--raster`` that would replace the ``--out``
    GeoPackage). ``outputs`` and ``inputs`` map an option name to its path; ``None`` entries are skipped. Paths
    are compared after resolving links, so ``./a.tif`` and ``a.tif`` are one file.

    Raises:
        UsageError: (exit 2, as ``detect`` refusing ``--out`` on its image) naming both options and the path.
    """
    seen: dict[Path, str] = {}
    for option, path in (inputs or {}).items():
        if path is not None:
            seen.setdefault(Path(path).expanduser().resolve(), option)
    n_inputs = len(seen)
    for option, path in outputs.items():
        if path is None:
            continue
        key = Path(path).expanduser().resolve()
        if key in seen:
            other = seen[key]
            what = "would overwrite its input" if list(seen).index(key) < n_inputs else "is also the path of"
            raise UsageError(f"{option} {path} {what} {other}; give each output its own path")
        seen[key] = option


def _cleanup(p: Path) -> None:
    with contextlib.suppress(OSError):
        p.unlink()
    for side in p.parent.glob(p.name + ".*"):  # GDAL side-cars (.aux.xml)
        with contextlib.suppress(OSError):
            side.unlink()


#: Free bytes kept in hand beyond a write's own size (file-system metadata, GDAL side-cars).
ROOM_MARGIN = 256 * 1024


def ensure_room(folder: str | Path, nbytes: int, what: str | Path | None = None) -> None:
    """Refuse, before writing, a write of up to ``nbytes`` into ``folder`` that the disk has no room for: a
    writer that runs out of space part-way (GDAL, libtiff) prints its own messages and a vague error.

    Raises:
        OutputError: the disk is full, naming the folder and what was needed.
    """
    import shutil

    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return  # the writer will say what is wrong with the folder
    if free < nbytes + ROOM_MARGIN:
        raise OutputError(f"could not write {what or folder}: the disk is full (No space left on device; "
                          f"{free / 2**20:.1f} MiB free, up to {(nbytes + ROOM_MARGIN) / 2**20:.1f} MiB needed); "
                          "free disk space or choose another --out, then rerun (finished tasks are kept)")


def write_text(path: str | Path, text: str) -> None:
    """Write text atomically (UTF-8)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | Path, obj: object) -> None:
    """Write JSON atomically (UTF-8, indented, keys in insertion order)."""
    write_text(path, json.dumps(obj, indent=2, ensure_ascii=False, default=str) + "\n")


def write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def remove_partials(root: str | Path) -> int:
    """Delete unfinished temporaries left under ``root`` by a killed process; return how many.

    Only names this module makes (``.<name>.partial-*``, plus GDAL side-cars) are touched. Call it
    before a run starts writing, never while another process writes into ``root``.
    """
    n = 0
    root = Path(root)
    if not root.is_dir():
        return 0
    for p in root.rglob(f".*{PARTIAL_MARK}*"):
        if p.is_file():
            with contextlib.suppress(OSError):
                p.unlink()
                n += 1
    return n
