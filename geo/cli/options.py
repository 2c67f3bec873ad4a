"""Options shared by several subcommands (rasterio's rio/options.py pattern)."""

from __future__ import annotations

import click

from geo.config import DetectConfig, RunParams, params_from_toml

config_opt = click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None,
                          help="TOML run file ([search], [cloud], [detect], [sites], [change]); flags override it.")
max_cloud_opt = click.option("--max-cloud", type=click.FloatRange(0, 100), default=None,
                             help="Skip scenes with more cloud cover (%). Default 80.")
collection_opt = click.option("--collection", default=None, metavar="ID",
                              help="STAC collection to search (default: the provider's, sentinel-2-l2a).")
method_opt = click.option("--method", type=click.Choice(["rules", "model", "fused"]), default=None,
                          help="Detector: U-Net fused with spectral rules (default), the U-Net alone, or the rules alone.")
workers_opt = click.option("--workers", type=click.IntRange(1, 256), default=None,
                           help="Dask LocalCluster worker processes (default: one per core).")
scheduler_opt = click.option("--scheduler", default=None, metavar="ADDRESS",
                             help="Use an existing Dask scheduler (tcp://host:8786) instead of a LocalCluster.")
weights_opt = click.option("--weights", "weights", type=click.Path(dir_okay=False), default=None,
                           help="U-Net weights (.pt with its .json card beside it) instead of the shipped ones; "
                                "overrides [detect] weights. Checked before any search.")


class VectorSource(click.Path):
    """A vector file, or one layer of it written as QGIS does, ``labels.gpkg|layername=pools``: its file part must
    exist (click's own message otherwise); the value is kept whole for :func:`models.vector_source.pick_layer`."""

    name = "vector"

    def __init__(self) -> None:
        super().__init__(exists=True, dir_okay=False)

    def convert(self, value, param, ctx):
        from models.vector_source import LAYER_SEP, split_layer

        file, layer = split_layer(value)
        super().convert(str(file), param, ctx)
        return value if layer is None else f"{file}{LAYER_SEP}{layer}"


tile_opt = click.option("--tile-px", type=click.IntRange(64, 8192), default=None, help="Tile edge in pixels (default 1024).")


def check_scheduler(address: str | None) -> None:
    """Refuse a ``--scheduler`` that is not ``tcp://host:port``, that nothing answers on, or that is not a Dask
    scheduler (another service, or a worker's address), before the run starts.

    Raises:
        UsageError: not a scheduler address (exit 2). ClusterError: nothing answers there, or not as a Dask
            scheduler does (exit 8).
    """
    from urllib.parse import urlsplit

    from geo.errors import UsageError

    if address is None:
        return
    parts = urlsplit(address if "://" in address else f"tcp://{address}")
    try:
        port = parts.port
    except ValueError:
        port = None
    if parts.scheme not in ("tcp", "tls") or not parts.hostname or port is None:
        raise UsageError(f"--scheduler {address!r} is not a Dask scheduler address; give tcp://host:port "
                         "(e.g. tcp://10.0.0.5:8786), or leave it out to start a local cluster")
    from geo.run.cluster import probe_scheduler

    probe_scheduler(address)  # ClusterError (exit 8): unreachable, another service, or a worker


def build_params(config_path: str | None, *, provider: str | None = None, max_cloud: float | None = None,
                 method: str | None = None, tile_px: int | None = None, weights: str | None = None,
                 collection: str | None = None) -> RunParams:
    """RunParams from an optional TOML file with CLI flags on top."""
    import dataclasses

    params = params_from_toml(config_path) if config_path else RunParams()
    search = params.search
    if provider is not None or max_cloud is not None:
        search = dataclasses.replace(search, provider=provider if provider is not None else search.provider,
                                     max_cloud=max_cloud if max_cloud is not None else search.max_cloud)
    if collection:
        search = dataclasses.replace(search, collection=collection)
    detect = params.detect if method is None else dataclasses.replace(params.detect, method=method)
    if weights is not None:
        from pathlib import Path

        detect = dataclasses.replace(detect, weights=str(Path(weights).expanduser().absolute()))
    if not isinstance(detect, DetectConfig):
        detect = DetectConfig()
    return dataclasses.replace(params, search=search, detect=detect,
                               tile_px=tile_px if tile_px is not None else params.tile_px)
