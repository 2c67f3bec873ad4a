"""The one Sentinel-2 band table. Everything looks bands up here, by id or provider alias.

Wavelengths are the Sentinel-2A central wavelengths (ESA S2 MSI user guide). Provider aliases are
the STAC asset keys used by Earth Search v1 (``red``, ``nir``, ...) and Planetary Computer (``B04``), and Google
Earth Engine's band names (``B4``, ``B8``).
"""

from __future__ import annotations

from dataclasses import dataclass

from geo.errors import RasterError


@dataclass(frozen=True)
class Band:
    """One Sentinel-2 band.

    Attributes:
        id: canonical id, e.g. ``"B04"``.
        common_name: STAC eo common name (``"red"``), or ``None``.
        resolution_m: native ground sampling distance in metres.
        wavelength_nm: central wavelength in nanometres (``None`` for SCL).
        earth_search: asset key in Earth Search v1 ``sentinel-2-l2a``.
        planetary_computer: asset key in Planetary Computer ``sentinel-2-l2a``.
    """

    id: str
    common_name: str | None
    resolution_m: int
    wavelength_nm: float | None
    earth_search: str
    planetary_computer: str


BANDS: dict[str, Band] = {
    b.id: b
    for b in (
        Band("B01", "coastal", 60, 442.7, "coastal", "B01"),
        Band("B02", "blue", 10, 492.4, "blue", "B02"),
        Band("B03", "green", 10, 559.8, "green", "B03"),
        Band("B04", "red", 10, 664.6, "red", "B04"),
        Band("B05", "rededge", 20, 704.1, "rededge1", "B05"),
        Band("B06", "rededge", 20, 740.5, "rededge2", "B06"),
        Band("B07", "rededge", 20, 782.8, "rededge3", "B07"),
        Band("B08", "nir", 10, 832.8, "nir", "B08"),
        Band("B8A", "nir08", 20, 864.7, "nir08", "B8A"),
        Band("B09", "nir09", 60, 945.1, "nir09", "B09"),
        Band("B10", "cirrus", 60, 1373.5, "cirrus", "B10"),
        Band("B11", "swir16", 20, 1613.7, "swir16", "B11"),
        Band("B12", "swir22", 20, 2202.4, "swir22", "B12"),
        Band("SCL", None, 20, None, "scl", "SCL"),
    )
}

#: Order of every L1C 13-band product (SAFE, sentinelhub, eo-learn).
L1C_ORDER: tuple[str, ...] = (
    "B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12",
)

#: Bands minewatch analyses (and the model's input order): 10 m visible/NIR and 20 m SWIR.
ANALYSIS_BANDS: tuple[str, ...] = ("B02", "B03", "B04", "B08", "B11", "B12")

_ALIASES: dict[str, str] = {}
for _b in BANDS.values():
    for _alias in (_b.id, _b.earth_search, _b.planetary_computer):
        _ALIASES[_alias.lower()] = _b.id
# Sentinel-2 file names write B8A as B8a or B08A at times.
_ALIASES["b08a"] = "B8A"
# Google Earth Engine's Sentinel-2 collections (and so its exports) name bands without the zero: B2, B8, B11.
for _b in BANDS.values():
    if _b.id[1] == "0":
        _ALIASES["b" + _b.id[2:]] = _b.id


def band(name: str) -> Band:
    """Return the :class:`Band` for an id or provider alias (case-insensitive).

    Raises:
        RasterError: the name is no Sentinel-2 band.
    """
    try:
        return BANDS[_ALIASES[name.strip().lower()]]
    except KeyError:
        known = ", ".join(BANDS)
        raise RasterError(
            f"'{name}' is not a Sentinel-2 band id or alias; use one of {known} "
            "(or an Earth Search key such as 'red', 'nir', 'swir16')"
        ) from None


def band_ids(names: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Map ids/aliases to canonical ids, keeping order."""
    return tuple(band(n).id for n in names)


#: Scene Classification Layer (L2A SCL) class values.
SCL_CLASSES: dict[int, str] = {
    0: "no_data",
    1: "saturated_or_defective",
    2: "cast_shadow_or_dark_area",
    3: "cloud_shadow",
    4: "vegetation",
    5: "not_vegetated",
    6: "water",
    7: "unclassified",
    8: "cloud_medium_probability",
    9: "cloud_high_probability",
    10: "thin_cirrus",
    11: "snow_or_ice",
}
