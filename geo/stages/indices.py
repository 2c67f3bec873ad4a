"""Spectral indices over Sentinel-2 surface reflectance.

Every function is pure: it takes named band arrays of reflectance (0–1, any shape, broadcastable)
and returns float32 of the broadcast shape. Where an index's denominator is 0 the result is NaN
(never ±inf, never a silent 0); NaN inputs propagate to NaN outputs.

Band names follow :mod:`geo.bands`: ``blue`` = B02, ``green`` = B03, ``red`` = B04, ``nir`` = B08,
``swir1`` = B11 (1.61 µm), ``swir2`` = B12 (2.19 µm).
"""

from __future__ import annotations

import numpy as np

from geo.errors import RasterError

__all__ = [
    "normalized_difference",
    "ndvi",
    "ndwi",
    "mndwi",
    "bsi",
    "ndbi",
    "ferric_ratio",
    "brightness",
    "compute_indices",
    "INDEX_FUNCTIONS",
]


def _f32(a) -> np.ndarray:
    return np.asarray(a, dtype=np.float32)


def _safe_ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``num / den`` as float32 with NaN where ``den == 0`` (no warnings, no inf)."""
    num, den = np.broadcast_arrays(_f32(num), _f32(den))
    out = np.full(num.shape, np.nan, dtype=np.float32)
    np.divide(num, den, out=out, where=den != 0)
    return out


def normalized_difference(a, b) -> np.ndarray:
    """Normalised difference ``(a − b) / (a + b)`` in float32; NaN where ``a + b == 0``.

    The generic form behind NDVI, NDWI, MNDWI and NDBI. Result lies in [−1, 1] for
    non-negative inputs.
    """
    a, b = _f32(a), _f32(b)
    return _safe_ratio(a - b, a + b)


def ndvi(*, red, nir) -> np.ndarray:
    """Normalised Difference Vegetation Index.

    ``NDVI = (NIR − Red) / (NIR + Red)`` with Sentinel-2 B08 and B04.

    Green vegetation is high (≈0.5–0.9); bare soil ≈0.05–0.25; water is negative.

    Reference: Rouse, J. W., Haas, R. H., Schell, J. A., Deering, D. W. (1974). Monitoring vegetation
    systems in the Great Plains with ERTS. NASA SP-351, 309–317.
    """
    return normalized_difference(nir, red)


def ndwi(*, green, nir) -> np.ndarray:
    """Normalised Difference Water Index (McFeeters).

    ``NDWI = (Green − NIR) / (Green + NIR)`` with Sentinel-2 B03 and B08.

    Open water is positive; vegetation and soil negative. Turbid or sediment-laden water can
    drop towards 0 because its NIR rises.

    Reference: McFeeters, S. K. (1996). The use of the Normalized Difference Water Index (NDWI) in
    the delineation of open water features. Int. J. Remote Sensing 17(7), 1425–1432.
    """
    return normalized_difference(green, nir)


def mndwi(*, green, swir1) -> np.ndarray:
    """Modified Normalised Difference Water Index (Xu).

    ``MNDWI = (Green − SWIR1) / (Green + SWIR1)`` with Sentinel-2 B03 and B11.

    Water absorbs SWIR strongly, so MNDWI separates water (positive, also when turbid) from
    built-up land and bare soil (negative) better than NDWI.

    Reference: Xu, H. (2006). Modification of normalised difference water index (NDWI) to enhance
    open water features in remotely sensed imagery. Int. J. Remote Sensing 27(14), 3025–3033.
    """
    return normalized_difference(green, swir1)


def bsi(*, blue, red, nir, swir1) -> np.ndarray:
    """Bare Soil Index.

    ``BSI = ((SWIR1 + Red) − (NIR + Blue)) / ((SWIR1 + Red) + (NIR + Blue))`` with Sentinel-2 B11,
    B04, B08 and B02.

    Bare soil is positive (high SWIR and red, low NIR and blue); vegetation and water negative.

    Reference: Rikimaru, A., Roy, P. S., Miyatake, S. (2002). Tropical forest cover density mapping.
    Tropical Ecology 43(1), 39–47.
    """
    blue, red, nir, swir1 = _f32(blue), _f32(red), _f32(nir), _f32(swir1)
    return normalized_difference(swir1 + red, nir + blue)


def ndbi(*, nir, swir1) -> np.ndarray:
    """Normalised Difference Built-up Index.

    ``NDBI = (SWIR1 − NIR) / (SWIR1 + NIR)`` with Sentinel-2 B11 and B08.

    Built-up land and bare soil are positive, vegetation negative, water strongly negative.

    Reference: Zha, Y., Gao, J., Ni, S. (2003). Use of normalized difference built-up index in
    automatically mapping urban areas from TM imagery. Int. J. Remote Sensing 24(3), 583–594.
    """
    return normalized_difference(swir1, nir)


def ferric_ratio(*, blue, red) -> np.ndarray:
    """Iron-oxide (ferric) ratio ``Red / Blue`` with Sentinel-2 B04 and B02; NaN where Blue is 0.

    Reddish, iron-rich (lateritic) soil exposed by clearing is > 1.5; vegetation ≈1, clear
    water < 1.

    Reference: Segal, D. B. (1982). Theoretical basis for differentiation of ferric-iron bearing
    minerals, using Landsat MSS data. Proc. 2nd Thematic Conf. Remote Sensing for Exploration
    Geology, 949–951.
    """
    return _safe_ratio(red, blue)


def brightness(*, blue, green, red, nir, swir1, swir2) -> np.ndarray:
    """Mean reflectance of the six analysis bands (B02 B03 B04 B08 B11 B12), float32.

    A simple albedo proxy: bare soil and sand are bright; water and shadow are dark.
    """
    stack = np.stack(np.broadcast_arrays(*(_f32(b) for b in (blue, green, red, nir, swir1, swir2))))
    return stack.mean(axis=0, dtype=np.float32)


#: Band ids (see :mod:`geo.bands`) for each keyword used above.
BAND_KEYWORDS: dict[str, str] = {
    "blue": "B02",
    "green": "B03",
    "red": "B04",
    "nir": "B08",
    "swir1": "B11",
    "swir2": "B12",
}

#: Index name → (function, keywords it needs).
INDEX_FUNCTIONS: dict[str, tuple] = {
    "ndvi": (ndvi, ("red", "nir")),
    "ndwi": (ndwi, ("green", "nir")),
    "mndwi": (mndwi, ("green", "swir1")),
    "bsi": (bsi, ("blue", "red", "nir", "swir1")),
    "ndbi": (ndbi, ("nir", "swir1")),
    "ferric": (ferric_ratio, ("blue", "red")),
    "brightness": (brightness, ("blue", "green", "red", "nir", "swir1", "swir2")),
}


def compute_indices(data: np.ndarray, bands: tuple[str, ...] | list[str], names=None) -> dict[str, np.ndarray]:
    """Compute several indices from a ``(band, y, x)`` reflectance array.

    Args:
        data: float32 reflectance, band axis first, in the order of ``bands``.
        bands: band ids of ``data`` (e.g. :data:`geo.bands.ANALYSIS_BANDS`).
        names: index names to compute (keys of :data:`INDEX_FUNCTIONS`); all by default.

    Returns:
        ``{name: float32 (y, x)}``.

    Raises:
        RasterError: a band an index needs is missing, or ``names`` holds an unknown index.
    """
    bands = tuple(bands)
    if data.shape[0] != len(bands):
        raise RasterError(f"data has {data.shape[0]} bands but {len(bands)} band names were given")
    names = tuple(INDEX_FUNCTIONS) if names is None else tuple(names)
    out: dict[str, np.ndarray] = {}
    for name in names:
        if name not in INDEX_FUNCTIONS:
            raise RasterError(f"unknown index '{name}'; choose from {', '.join(INDEX_FUNCTIONS)}")
        fn, keys = INDEX_FUNCTIONS[name]
        kwargs = {}
        for k in keys:
            bid = BAND_KEYWORDS[k]
            if bid not in bands:
                raise RasterError(f"index {name} needs band {bid} ({k}); the data has {', '.join(bands)}")
            kwargs[k] = data[bands.index(bid)]
        out[name] = fn(**kwargs)
    return out
