"""The run folder while a run writes into it: a lock against a second run, and a manifest that says how it ended.

:func:`guard_run_folder` wraps :func:`geo.run.pipeline.run`: the run takes the folder's lock
(:func:`hold_run_folder`, an ``flock`` on :data:`LOCK_NAME` that the kernel frees if the process dies) and names its
manifest (:func:`record_manifest`); when the run ends the lock is released and its file removed, and when it stops
with an error the manifest says ``"status": "failed"`` (``"interrupted"`` on Ctrl-C or SIGTERM, see
:class:`Terminated`) with the one-line reason.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import functools
import json
import logging
import os
from pathlib import Path

from geo.errors import OutputError, UsageError
from geo.fsutil import write_json

log = logging.getLogger(__name__)


#: Lock file of a run folder: held (``flock``) by the process running into it, released when it ends or dies.
LOCK_NAME = ".minewatch.lock"


class Terminated(KeyboardInterrupt):
    """The process was asked to stop by a signal (SIGTERM: ``kill``, ``timeout``, Slurm, ``docker stop``).

    A :class:`KeyboardInterrupt`, so it takes Ctrl-C's way out: the run stops where it is, its manifest says
    ``"interrupted"`` with the signal's name, its lock is released; the CLI exits with 128 + the signal number.
    """

    def __init__(self, signum: int):
        import signal

        self.signum = signum
        try:
            self.name = signal.Signals(signum).name
        except ValueError:
            self.name = f"signal {signum}"
        super().__init__(f"stopped by {self.name}")

    def __reduce__(self):
        return type(self), (self.signum,)


class RunLock:
    """The run folder's lock, held by this process (``flock`` on :data:`LOCK_NAME`; the kernel releases it
    if the process dies). :meth:`close` removes the file and releases the lock."""

    def __init__(self, path: Path, f):
        self.path, self._f = path, f

    def close(self) -> None:
        if self._f is not None:
            with contextlib.suppress(OSError):
                self.path.unlink()
            self._f.close()
            self._f = None


def lock_run_dir(out: Path) -> RunLock:
    """Hold the run folder's lock for this process.

    Raises:
        OutputError: another process holds it (two runs into one ``--out`` at once would mix their tasks).
    """
    import fcntl

    path = out / LOCK_NAME
    while True:
        try:
            f = open(path, "a+")
        except OSError as exc:
            raise OutputError(f"cannot create the lock file in run folder {out} ({exc.strerror}); "
                              "choose a writable --out") from None
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.seek(0)
            holder = f.read().strip() or "unknown"
            f.close()
            raise OutputError(f"another minewatch run (process {holder}) is writing into {out}; wait for it to "
                              "finish or choose another --out folder") from None
        try:  # the holder before us may have removed the file after we opened it: lock the file now there
            same = os.stat(path).st_ino == os.fstat(f.fileno()).st_ino
        except OSError:
            same = False
        if same:
            break
        f.close()
    f.seek(0)
    f.truncate()
    f.write(str(os.getpid()))
    f.flush()
    return RunLock(path, f)


#: Names a run folder may hold before its first run without counting as the user's own files: hidden files (the
#: lock, ``.DS_Store``) and ``run.log``, which ``scripts/run_all_aois.py`` opens before it starts the run.
RUN_FOLDER_PRE_FILES = ("run.log",)


def is_run_folder(out: Path) -> bool:
    """Whether ``out`` holds a minewatch run: a manifest that minewatch wrote (``"tool": "minewatch"``), the run lock,
    or a real ``tasks/`` folder with at least one finished task (``tasks/<season>/<tile>/done.json``)."""
    import json

    if (out / LOCK_NAME).is_file():
        return True
    try:
        man = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
        if isinstance(man, dict) and man.get("tool") == "minewatch":
            return True
    except (OSError, ValueError):
        pass
    tasks = out / "tasks"
    return tasks.is_dir() and not tasks.is_symlink() and next(tasks.glob("*/*/done.json"), None) is not None


def check_run_out(out: Path) -> None:
    """Refuse an ``--out`` folder that already holds files and no minewatch run (:func:`is_run_folder`).

    A run writes a dozen files and folders (``tasks/``, ``summary.csv``, ``manifest.json``, ...) and later prunes
    what it made; among a user's own files (``--out ~/Documents``) it would mix its outputs with theirs, and a file
    of theirs named like one of its own (``manifest.json``) would be overwritten.

    Raises:
        UsageError: naming the folder and the way out.
    """
    if out.is_symlink() and not out.exists():
        raise UsageError(f"--out {out} is a broken symbolic link (to {os.readlink(out)}); remove it or give a folder")
    if not out.is_dir() or is_run_folder(out):
        return
    try:
        own = [p.name for p in out.iterdir() if not p.name.startswith(".") and p.name not in RUN_FOLDER_PRE_FILES]
    except OSError:
        return  # an unreadable folder: the run's own checks say why in one line
    if own:
        shown = ", ".join(sorted(own)[:3]) + (", ..." if len(own) > 3 else "")
        raise UsageError(f"{out} already holds files ({shown}) and no minewatch run; give a new or empty --out "
                         "folder, e.g. a subfolder of it")


def mark_failed(path: Path, manifest: dict, exc: BaseException) -> None:
    """Record in ``manifest.json`` that the run stopped (``"status": "failed"``, or ``"interrupted"`` on Ctrl-C or
    SIGTERM), with the one-line reason; best effort (a full disk may refuse even this)."""
    manifest["status"] = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
    if isinstance(exc, KeyboardInterrupt):
        how = str(exc) if isinstance(exc, Terminated) else "interrupted (Ctrl-C)"
        manifest["error"] = f"{type(exc).__name__}: {how}; finished tasks are kept, rerun the same command to resume"
    else:
        manifest["error"] = " ".join(f"{type(exc).__name__}: {exc}".split())[:1000]
    manifest["finished"] = dt.datetime.now(dt.timezone.utc).isoformat()
    try:
        write_json(path, manifest)
    except OSError as err:  # a full disk: overwrite in place, compact, when that needs no more room than the file has
        text = json.dumps(manifest, separators=(",", ":"), ensure_ascii=False, default=str).encode()
        try:
            if len(text) > path.stat().st_size:
                raise OSError("no room")
            with open(path, "r+b") as f:
                f.write(text)
                f.truncate()
        except OSError:
            log.warning("could not mark %s as %s (%s)", path, manifest["status"], err)


_GUARD: contextvars.ContextVar[dict | None] = contextvars.ContextVar("minewatch_run_guard", default=None)


def hold_run_folder(out: Path) -> None:
    """Take the run folder's lock (:func:`lock_run_dir`) for the :func:`guard_run_folder` call around this one."""
    state = _GUARD.get()
    lock = lock_run_dir(out)
    if state is None:  # not under the guard: nothing would release it
        lock.close()
    else:
        state["lock"] = lock


def record_manifest(path: Path, manifest: dict) -> None:
    """Tell the :func:`guard_run_folder` call around this one which manifest to mark if the run stops."""
    state = _GUARD.get()
    if state is not None:
        state["manifest"] = (path, manifest)


def guard_run_folder(fn):
    """Around a run: release the run-folder lock when it ends, and mark its manifest ``failed`` (``interrupted``
    on Ctrl-C or SIGTERM) with the one-line reason when it stops with an error (:func:`mark_failed`)."""

    @functools.wraps(fn)
    def guarded(*args, **kwargs):
        state: dict = {}
        token = _GUARD.set(state)
        try:
            return fn(*args, **kwargs)
        except BaseException as exc:
            if "manifest" in state and state["manifest"][1].get("status") == "running":
                mark_failed(*state["manifest"], exc)
            raise
        finally:
            _GUARD.reset(token)
            if "lock" in state:
                state["lock"].close()

    return guarded
