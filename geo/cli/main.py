"""Entry point of the ``minewatch`` command: the group, logging set-up and error → exit-code mapping."""

from __future__ import annotations

import importlib
import logging
import signal
import sys
import threading
import warnings

import click

from geo import __version__
from geo.errors import MinewatchError, disk_full_error, exit_code_for

#: Subcommand modules under ``geo.cli``; each defines ``command`` (a click command).
SUBCOMMANDS = ("demo", "run", "change", "sample", "estimate", "search", "detect", "train", "evaluate")


class MinewatchGroup(click.Group):
    """A click group that turns minewatch errors into one-line messages and documented exit codes."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except MinewatchError as exc:
            click.echo(f"Error: {' '.join(str(exc).split())}", err=True)  # one line, even if a library's text is not
            ctx.exit(exit_code_for(exc))
        except KeyboardInterrupt as exc:
            ctx.exit(_interrupted(exc, ctx.invoked_subcommand))
        except click.exceptions.Exit:
            raise
        except Exception as exc:  # a full disk met outside minewatch's own writers (GDAL, SQLite, numpy)
            full = disk_full_error(exc)
            if full is None:
                raise
            click.echo(f"Error: {' '.join(str(full).split())}", err=True)
            ctx.exit(exit_code_for(full))


#: What an interrupted command leaves, by subcommand (default: the run commands, which resume).
_AFTER_INTERRUPT = {
    "train": "training keeps no checkpoint, so nothing was saved and earlier weights are untouched (fetched scenes "
             "stay in the cache); rerun to train from the start",
    **dict.fromkeys(("detect", "evaluate", "search", "sample", "estimate"),
                    "outputs are written only when complete, so none was; rerun the command"),
}


def _interrupted(exc: BaseException, command: str | None = None) -> int:
    """Say (one line) that Ctrl-C (exit 130) or a signal such as SIGTERM (exit 128 + its number: 143) stopped the
    command, and what it left, and return the exit code."""
    from geo.run.runfolder import Terminated

    after = _AFTER_INTERRUPT.get(command or "", "finished results are kept, rerun the same command to resume")
    if isinstance(exc, Terminated):
        click.echo(f"Terminated ({exc.name}); {after}.", err=True)
        return 128 + exc.signum
    click.echo(f"Interrupted; {after}.", err=True)
    return 130


def _on_sigterm(signum, frame) -> None:
    """SIGTERM takes Ctrl-C's way out (:class:`geo.run.runfolder.Terminated`); a second one ends the process at once."""
    from geo.run.runfolder import Terminated

    signal.signal(signum, signal.SIG_DFL)
    raise Terminated(signum)


def setup_logging(verbose: int, quiet: bool) -> None:
    level = logging.WARNING if quiet else (logging.DEBUG if verbose > 1 else logging.INFO)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    # a LocalCluster's HTTP server moves to a free port when another cluster holds 8787: not the user's concern
    warnings.filterwarnings("ignore", message=r"Port \d+ is already in use", category=UserWarning)
    for noisy in ("rasterio", "urllib3", "distributed", "fiona", "pyogrio", "matplotlib", "PIL"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))


@click.group(cls=MinewatchGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="minewatch")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.option("-q", "--quiet", is_flag=True, help="Only warnings and errors.")
def cli(verbose: int, quiet: bool) -> None:
    """minewatch: find and measure rare-earth mining footprints in Sentinel-2 imagery."""
    setup_logging(verbose, quiet)


for _name in SUBCOMMANDS:
    cli.add_command(importlib.import_module(f"geo.cli.{_name}").command)


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; usage errors become one ``Error: ...`` line and exit code 2; SIGTERM stops it as Ctrl-C does
    (finished work kept, the run's manifest ``interrupted``), with exit code 143."""
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _on_sigterm) if main_thread else None
    try:
        rv = cli.main(args=argv, prog_name="minewatch", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.exceptions.Abort as exc:
        if isinstance(exc.__context__, KeyboardInterrupt):  # Ctrl-C or SIGTERM outside a subcommand
            sys.exit(_interrupted(exc.__context__))
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except KeyboardInterrupt as exc:
        sys.exit(_interrupted(exc))
    except click.ClickException as exc:
        hint = f" (see 'minewatch {exc.ctx.command_path.split(' ', 1)[1]} --help')" if getattr(exc, "ctx", None) and " " in exc.ctx.command_path else " (see 'minewatch --help')"
        click.echo(f"Error: {exc.format_message()}{hint}", err=True)
        sys.exit(exc.exit_code)
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)
    sys.exit(rv if isinstance(rv, int) else 0)
