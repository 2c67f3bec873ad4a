"""Exception and warning classes of minewatch.

Every class refines the builtin it subclasses so callers can catch either. Messages name the
likely cause and the fix. The CLI maps each class to an exit code (see :data:`EXIT_CODES`)
and prints one line, never a traceback.
"""

from __future__ import annotations

import errno
import re


def _rebuild(cls: type, message: str, state: dict) -> "MinewatchError":
    """Unpickle a :class:`MinewatchError` without calling its ``__init__`` (whatever its signature)."""
    exc = cls.__new__(cls, message)
    Exception.__init__(exc, message)
    exc.__dict__.update(state)
    return exc


class MinewatchError(Exception):
    """Base class of every error minewatch raises on purpose.

    Instances pickle with their class, message and attributes only (never their chained cause, which may be
    a library's unpicklable error), so they keep their type and exit code when a Dask worker sends them back.
    """

    def __reduce__(self):
        return _rebuild, (type(self), str(self), dict(self.__dict__))


class UsageError(MinewatchError, ValueError):
    """A command-line argument or config value is wrong (bad dates, unknown key, ...)."""


class AoiError(MinewatchError, ValueError):
    """An AOI file is missing, unreadable or holds unusable geometry."""


class PeriodError(MinewatchError, ValueError):
    """A period/season range is malformed (end before start, in the future, ...)."""


class ConfigError(MinewatchError, ValueError):
    """A TOML run/training config has unknown keys or values of the wrong type."""


class StacError(MinewatchError, RuntimeError):
    """A STAC API could not be searched (unreachable, unknown collection, bad answer)."""


class AccessDeniedError(StacError):
    """A server refused a request with HTTP 401/403 (a missing, expired or revoked signature). Exit code 3.

    Attributes:
        status: the HTTP status, when known.
    """

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status



class NoDataError(MinewatchError, RuntimeError):
    """A search or load produced nothing usable (no items, every scene cloudy, all nodata)."""


class RasterError(MinewatchError, ValueError):
    """A raster is unreadable, corrupt, lacks a required band or has no georeferencing."""


class CrsError(RasterError):
    """Georeferencing is missing or inconsistent. minewatch never assumes EPSG:4326."""


class WeightsError(MinewatchError, ValueError):
    """Model weights are missing, corrupt, unsafe or do not match the model card."""


class OutputError(MinewatchError, OSError):
    """The run folder cannot be written (not writable, disk full, belongs to another run)."""


class ClusterError(MinewatchError, RuntimeError):
    """A Dask cluster could not run the tasks or deliver their results (scheduler unreachable, workers died,
    workers without minewatch). Exit code 8."""


class UnexpectedError(MinewatchError, RuntimeError):
    """An error minewatch did not foresee (a bug), carried back from a task as class name and message. Exit code 1."""


class MinewatchWarning(UserWarning):
    """Base class of minewatch warnings; escalate with ``warnings.simplefilter('error', MinewatchWarning)``."""


class LowCoverageWarning(MinewatchWarning):
    """A period has too few clear observations for a confident measurement."""


#: Exit codes of the ``minewatch`` command, by error class (most specific first).
EXIT_CODES: tuple[tuple[type[BaseException], int], ...] = (
    (UsageError, 2),
    (AoiError, 2),
    (PeriodError, 2),
    (ConfigError, 2),
    (CrsError, 4),
    (RasterError, 4),
    (WeightsError, 5),
    (StacError, 3),
    (NoDataError, 6),
    (OutputError, 7),
    (ClusterError, 8),
)


def exit_code_for(exc: BaseException) -> int:
    """Return the documented exit code for ``exc`` (1 for anything unexpected)."""
    for cls, code in EXIT_CODES:
        if isinstance(exc, cls):
            return code
    return 1


#: ``errno`` values meaning "the disk is full" (no space, quota exceeded).
DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)})


_SHORT_WRITE = re.compile(r"\d+ requested and \d+ written")


def disk_full_error(exc: BaseException, what: str = "the run folder") -> OutputError | None:
    """An :class:`OutputError` (exit 7) when ``exc`` says the disk is full, else None.

    Recognises ``OSError`` with ENOSPC/EDQUOT (anywhere in its chain) and SQLite's
    ``database or disk is full`` (GeoPackage writes).
    """
    seen = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        text = str(e)
        full = (isinstance(e, OSError) and e.errno in DISK_FULL_ERRNOS) or "database or disk is full" in text \
            or "No space left on device" in text \
            or (isinstance(e, OSError) and _SHORT_WRITE.search(text) is not None)  # numpy: a write cut short
        if full:
            if isinstance(e, OutputError) and "disk" in str(e):
                return e
            return OutputError(f"could not write {what}: the disk is full (No space left on device); "
                               "free disk space or choose another --out, then rerun (finished tasks are kept)")
        e = e.__cause__ or e.__context__
    return None


def portable_error(exc: BaseException, where: str = "") -> BaseException:
    """``exc`` made safe to cross a process boundary with its class and exit code.

    A :class:`MinewatchError` loses its chained cause (often a library's unpicklable error); a full disk
    becomes an :class:`OutputError`; any other ``Exception`` becomes an :class:`UnexpectedError` naming its
    class and message (and the code line it came from). ``KeyboardInterrupt`` and other non-``Exception``
    signals pass unchanged.
    """
    if not isinstance(exc, Exception):
        return exc
    full = disk_full_error(exc)
    if full is not None:
        exc = full
    elif not isinstance(exc, MinewatchError):
        tb, at = exc.__traceback__, ""
        while tb is not None:
            at = f" at {tb.tb_frame.f_code.co_filename.rsplit('/', 2)[-1]}:{tb.tb_lineno}"
            tb = tb.tb_next
        text = " ".join(str(exc).split())[:500]
        exc = UnexpectedError(f"{where}{type(exc).__name__}: {text}{at}; this is a bug, please report it with the "
                              "command line (finished tasks are kept: rerun to resume)")
    exc.__cause__ = exc.__context__ = None
    exc.__suppress_context__ = True
    return exc
