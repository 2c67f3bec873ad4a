"""Exception and warning classes of minewatch.

Every class refines the builtin it subclasses so callers can catch either. Messages name the
likely cause and the fix. The CLI maps each class to an exit code (see :data:`EXIT_CODES`)
and prints one line, never a traceback.
"""

from __future__ import annotations


class MinewatchError(Exception):
    """Base class of every error minewatch raises on purpose."""


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

    def __reduce__(self):  # keep the status when a worker process sends the error back
        return type(self), (str(self), self.status)


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
