"""Vector sources: a file, or one layer of a multi-layer file named as QGIS writes it in Layer Properties > Source
(``labels.gpkg|layername=pools``). Used by every reader of labels, points and reference layers, and by the CLI's
option type, so it imports nothing heavy."""

from __future__ import annotations

from pathlib import Path

from geo.errors import ConfigError, RasterError

#: Separator of a file and its layer, QGIS's own syntax.
LAYER_SEP = "|layername="


def vector_layers(path) -> list[str]:
    """Names of the layers with geometries of a vector file (not tables such as a GeoPackage's ``layer_styles``);
    empty when it cannot be listed (the reader then says why)."""
    import pyogrio

    try:
        layers = pyogrio.list_layers(path)
    except Exception:  # noqa: BLE001 - unreadable files are reported by gpd.read_file with their own message
        return []
    spatial = [str(name) for name, geom in layers if geom is not None]
    return spatial if len(layers) > 1 else [str(name) for name, _ in layers]


def split_layer(path) -> tuple[Path, str | None]:
    """``(file, layer)`` of a vector source written ``file`` or ``file|layername=layer`` (:data:`LAYER_SEP`, QGIS's
    own syntax); ``layer`` is ``None`` when none is named. Options after a further ``|`` (QGIS's ``|subset=…``)
    are not read."""
    file, sep, rest = str(path).partition(LAYER_SEP)
    return Path(file), (rest.split("|", 1)[0] if sep else None)


def source_name(path) -> str:
    """A short name for a vector source in tables: the file's stem, ``stem:layer`` for a named layer."""
    file, layer = split_layer(path)
    return file.stem if layer is None else f"{file.stem}:{layer}"


def pick_layer(path, what: str) -> tuple[Path, str | None]:
    """The file and layer to read for a vector source ``path`` (see :func:`split_layer`): the named layer, else the
    file's one layer with geometries (``None``: let the reader say why it cannot list any).

    Raises:
        ConfigError: ``|layername=`` with no name.
        RasterError: a named layer the file lacks, or no layer named in a file of several (pyogrio would read the
            first with a warning, and the user's layer may be another one).
    """
    file, layer = split_layer(path)
    layers = vector_layers(file)
    if layer is not None:
        if not layer.strip():
            raise ConfigError(f"{what} {path} names no layer after '{LAYER_SEP}'; write e.g. {file}{LAYER_SEP}"
                              f"{layers[0] if layers else 'pools'}")
        if layers and layer not in layers:
            raise RasterError(f"{what} {file} has no layer {layer!r}; its layers: {', '.join(layers)}")
        return file, layer
    if len(layers) > 1:
        raise RasterError(f"{what} {file} holds {len(layers)} layers ({', '.join(layers)}); name the one to read as "
                          f"{file}{LAYER_SEP}{layers[-1]} (QGIS's layer syntax; quote it in a shell)")
    return file, (layers[0] if layers else None)
