"""The simulator's spectral table: land-cover classes × ANALYSIS_BANDS, mean and std surface reflectance.

The table is ``geo/data/spectra.csv`` (package data), derived from real Sentinel-2 pixels by
``scripts/derive_spectra.py``; pond, tarp, laterite, river, gravel-bar and roof rows are documented
assumptions (``geo/data/SPECTRA.md``). Reading the packaged CSV is the only I/O of the simulator.
"""

from __future__ import annotations

import csv
import functools
import io
from dataclasses import dataclass
from importlib import resources

import numpy as np

from geo.bands import ANALYSIS_BANDS
from geo.errors import ConfigError

#: Land-cover classes the simulator renders, in the order of :attr:`Spectra.mean`'s first axis.
LC_NAMES: tuple[str, ...] = (
    "forest", "forest_lowland", "grassland", "shrubland", "crop_field", "bare_field", "artificial",
    "roof_metal", "river_turbid", "sand_gravel_bar", "laterite_soil", "pond_turquoise", "pond_milky",
    "pond_brown", "tarp_blue", "tarp_black", "water", "sand_beach",
)
LC: dict[str, int] = {name: i for i, name in enumerate(LC_NAMES)}
POND_LC: tuple[int, ...] = (LC["pond_turquoise"], LC["pond_milky"], LC["pond_brown"])
WATER_LC: tuple[int, ...] = (*POND_LC, LC["river_turbid"], LC["water"])
VEGETATION_LC: tuple[int, ...] = tuple(LC[n] for n in ("forest", "forest_lowland", "grassland", "shrubland", "crop_field"))


@dataclass(frozen=True)
class Spectra:
    """Mean and standard deviation of surface reflectance (0–1) per land-cover class and band.

    Attributes:
        mean: float32 ``(len(LC_NAMES), 6)`` in :data:`geo.bands.ANALYSIS_BANDS` order.
        std: float32, same shape: within-class spread (spatial texture + scene-to-scene).
    """

    mean: np.ndarray
    std: np.ndarray

    def randomized(self, rng: np.random.Generator, scale: float = 0.6) -> "Spectra":
        """A copy whose class means are drawn once from ``mean + scale·std·z`` (z ~ N(0,1), shared by bands
        with weight 0.7 so that brightness varies more than shape), clipped to 0.002–0.9."""
        n = self.mean.shape[0]
        z = 0.7 * rng.standard_normal((n, 1)) + 0.5 * rng.standard_normal(self.mean.shape)
        mean = np.clip(self.mean + scale * self.std * z, 0.002, 0.9).astype(np.float32)
        return Spectra(mean, self.std)


def parse_spectra(text: str) -> Spectra:
    """Parse spectra.csv text (columns class, band, mean, std, n_pixels, source).

    Raises:
        ConfigError: a class the simulator needs is missing, or a value lies outside 0–1.
    """
    mean = np.full((len(LC_NAMES), len(ANALYSIS_BANDS)), np.nan, np.float32)
    std = np.full_like(mean, np.nan)
    for row in csv.DictReader(io.StringIO(text)):
        cls, band = row["class"], row["band"]
        if cls not in LC or band not in ANALYSIS_BANDS:
            continue
        m, s = float(row["mean"]), float(row["std"])
        if not (0.0 <= m <= 1.0 and 0.0 <= s <= 1.0):
            raise ConfigError(f"spectra.csv: {cls}/{band} mean {m} std {s} outside 0-1; rerun scripts/derive_spectra.py")
        mean[LC[cls], ANALYSIS_BANDS.index(band)] = m
        std[LC[cls], ANALYSIS_BANDS.index(band)] = s
    missing = sorted({LC_NAMES[i] for i in np.argwhere(np.isnan(mean))[:, 0]})
    if missing:
        raise ConfigError(f"spectra.csv lacks classes {missing}; rerun scripts/derive_spectra.py")
    return Spectra(mean, std)


@functools.lru_cache(maxsize=1)
def load_spectra() -> Spectra:
    """The packaged table ``geo/data/spectra.csv`` (cached)."""
    text = resources.files("geo").joinpath("data/spectra.csv").read_text(encoding="utf-8")
    return parse_spectra(text)
