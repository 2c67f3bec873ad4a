"""Entry point of the ``minewatch`` command: the group, logging set-up and error → exit-code mapping."""

from __future__ import annotations

import importlib
import logging
import sys
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
        except KeyboardInterrupt:
            click.echo("Interrupted; finished results are kept, rerun the same command to resume.", err=True)
            ctx.exit(130)
        except click.exceptions.Exit:
            raise
        except Exception as exc:  # a full disk met outside minewatch's own writers (GDAL, SQLite, numpy)
            full = disk_full_error(exc)
            if full is None:
                raise
            click.echo(f"Error: {' '.join(str(full).split())}", err=True)
            ctx.exit(exit_code_for(full))


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
    """Run the CLI; usage errors become one ``Error: ...`` line and exit code 2."""
    try:
        rv = cli.main(args=argv, prog_name="minewatch", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        hint = f" (see 'minewatch {exc.ctx.command_path.split(' ', 1)[1]} --help')" if getattr(exc, "ctx", None) and " " in exc.ctx.command_path else " (see 'minewatch --help')"
        click.echo(f"Error: {exc.format_message()}{hint}", err=True)
        sys.exit(exc.exit_code)
    sys.exit(rv if isinstance(rv, int) else 0)
