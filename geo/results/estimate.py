"""Good-practice area estimation from a stratified random sample (Olofsson et al. 2014; Stehman 2014).

The map classes of one period are the strata. A sample of pixels is drawn at random within each stratum
(:func:`allocate`, :func:`draw_sample`); an analyst labels each point with its reference class; the
estimator then gives error-adjusted areas, user's and producer's accuracies and their 95 % intervals.

The estimators are the stratified ratio estimators of Stehman (2014, "Estimating area and map accuracy for
stratified random sampling when the strata are different from the map classes", IJRS 35: 4923–4939), which
reduce to Olofsson et al. (2014, RSE 148: 42–57) Eqs. 9–13 when strata and map classes coincide. No finite
population correction is applied (as in Olofsson et al.; the strata hold far more pixels than the sample).

References:
    Olofsson, P., Foody, G. M., Herold, M., Stehman, S. V., Woodcock, C. E., Wulder, M. A. (2014). Good practices
    for estimating area and assessing accuracy of land change. Remote Sensing of Environment 148, 42–57.
    https://doi.org/10.1016/j.rse.2014.02.015
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

Z95 = 1.959963984540054


def allocate(stratum_sizes: dict[int, int], n: int, *, n_min: int | None = None) -> dict[int, int]:
    """Sample size per stratum: proportional to stratum size, but at least ``n_min`` in every non-empty stratum.

    Olofsson et al. (2014, Sect. 5.1.2) recommend allocating 50–100 points to each rare (change) stratum and the
    rest roughly proportionally. ``n_min`` defaults to ``min(50, n // (2 · strata))``; the points given to rare
    strata are taken from the larger ones in proportion to their size. No stratum gets more points than pixels.
    """
    sizes = {h: int(s) for h, s in stratum_sizes.items() if int(s) > 0}
    if not sizes or n <= 0:
        return {h: 0 for h in stratum_sizes}
    k = len(sizes)
    if n_min is None:
        n_min = max(1, min(50, n // (2 * k)))
    out: dict[int, int] = {}
    rest_sizes = dict(sizes)
    budget = n
    # Fix rare strata at their minimum (or their size), then spread the rest proportionally, repeatedly.
    while rest_sizes:
        total = sum(rest_sizes.values())
        prop = {h: budget * s / total for h, s in rest_sizes.items()}
        small = {h for h, v in prop.items() if v < min(n_min, rest_sizes[h])}
        if not small:
            break
        for h in small:
            out[h] = min(n_min, rest_sizes.pop(h))
            budget -= out[h]
    if rest_sizes:
        budget = max(0, budget)
        total = sum(rest_sizes.values())
        raw = {h: budget * s / total for h, s in rest_sizes.items()}
        floor = {h: min(int(np.floor(v)), rest_sizes[h]) for h, v in raw.items()}
        left = budget - sum(floor.values())
        for h in sorted(raw, key=lambda h: raw[h] - np.floor(raw[h]), reverse=True):
            if left <= 0:
                break
            if floor[h] < rest_sizes[h]:
                floor[h] += 1
                left -= 1
        out.update(floor)
    return {h: out.get(h, 0) for h in stratum_sizes}


def draw_sample(strata: np.ndarray, valid: np.ndarray, allocation: dict[int, int],
                rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pixels drawn at random without replacement within each stratum.

    Args:
        strata: int raster of stratum values (the map classes).
        valid: bool raster, True = pixel belongs to the population (inside the AOI).
        allocation: stratum → number of points.
        rng: random generator (seeded by the caller for reproducibility).

    Returns:
        ``(rows, cols, stratum)`` arrays, one entry per sample point.
    """
    rows, cols, hs = [], [], []
    for h, n_h in sorted(allocation.items()):
        idx = np.flatnonzero((strata == h) & valid)
        if n_h <= 0 or idx.size == 0:
            continue
        pick = rng.choice(idx, size=min(n_h, idx.size), replace=False)
        r, c = np.unravel_index(np.sort(pick), strata.shape)
        rows.append(r)
        cols.append(c)
        hs.append(np.full(r.size, h, dtype=np.int64))
    if not rows:
        return np.array([], int), np.array([], int), np.array([], int)
    return np.concatenate(rows), np.concatenate(cols), np.concatenate(hs)


@dataclass(frozen=True)
class Estimate:
    """A stratified estimate with its standard error and 95 % interval (same units as the estimate)."""

    value: float
    se: float

    @property
    def low(self) -> float:
        return self.value - Z95 * self.se

    @property
    def high(self) -> float:
        return self.value + Z95 * self.se


def _ratio(sizes: dict[int, float], strata: np.ndarray, y: np.ndarray, x: np.ndarray | None, *,
           smooth: frozenset[int] = frozenset()) -> Estimate:
    """Stratified estimator of ``Y / X`` (totals over the population; ``x=None`` means X = population size).

    Var(R̂) = Σ_h N_h² (s²_yh + R̂² s²_xh − 2 R̂ s_xyh) / n_h / X̂²  (Stehman 2014, Eq. 28, no fpc).
    ``smooth`` (proportions only): in these strata the variance is at least p̃(1 − p̃) with p̃ = 1 / (n_h + 2), so
    a stratum whose sample happened to hold no error is not taken as error-free (add-one smoothing, as in the
    Agresti–Coull interval); the point estimate is unchanged. A stratum with a single sample point has no sample
    variance: a smoothed one takes the floor alone, any other leaves the standard error undefined (NaN). Before,
    such strata added nothing, and one point per stratum gave a 95 % interval of zero width.
    """
    y_tot, x_tot, parts = 0.0, 0.0, []
    for h, n_pop in sizes.items():
        sel = strata == h
        n_h = int(sel.sum())
        if n_pop <= 0:
            continue
        if n_h == 0:
            return Estimate(float("nan"), float("nan"))  # a stratum with pixels but no sample: not estimable
        yh = y[sel].astype(float)
        xh = x[sel].astype(float) if x is not None else np.ones(n_h)
        y_tot += n_pop * yh.mean()
        x_tot += n_pop * xh.mean()
        parts.append((h, n_pop, n_h, yh, xh))
    if x_tot <= 0:
        return Estimate(float("nan"), float("nan"))
    r = y_tot / x_tot
    var = 0.0
    for h, n_pop, n_h, yh, xh in parts:
        if n_h < 2 and h not in smooth:  # one point says nothing of a stratum's spread: no interval, not a 0-wide one
            return Estimate(float(r), float("nan"))
        d = yh - r * xh  # residuals; s²_y + R² s²_x − 2R s_xy = var(y − R x)
        v = d.var(ddof=1) if n_h > 1 else 0.0
        if h in smooth:
            q = 1.0 / (n_h + 2)
            v = max(v, q * (1 - q))
        var += n_pop**2 * v / n_h
    return Estimate(float(r), float(np.sqrt(var) / x_tot))


def estimate_class(sizes: dict[int, float], strata: np.ndarray, reference: np.ndarray,
                   map_class: np.ndarray, classes: set[int], *, smooth: frozenset[int] = frozenset()
                   ) -> dict[str, Estimate]:
    """Area proportion, user's and producer's accuracy of the class set ``classes`` (e.g. {1, 2} = footprint).

    Args:
        sizes: stratum → population size (pixels); strata absent here are ignored.
        strata: stratum of each sample unit.
        reference: reference class of each unit.
        map_class: map class of each unit (equal to ``strata`` when the strata are the map classes).
        classes: the reference/map classes that make up the estimated class.
        smooth: strata whose variance of the area proportion is floored (see :func:`_ratio`); empty reproduces
            Olofsson et al. (2014) exactly.

    Returns:
        ``proportion`` (of the population), ``users_accuracy``, ``producers_accuracy`` as :class:`Estimate`.
    """
    in_ref = np.isin(reference, list(classes))
    in_map = np.isin(map_class, list(classes))
    agree = in_ref & in_map
    return {"proportion": _ratio(sizes, strata, in_ref, None, smooth=smooth),
            "users_accuracy": _ratio(sizes, strata, agree, in_map),
            "producers_accuracy": _ratio(sizes, strata, agree, in_ref)}


def overall_accuracy(sizes: dict[int, float], strata: np.ndarray, reference: np.ndarray,
                     map_class: np.ndarray) -> Estimate:
    """Overall accuracy (proportion of the population correctly mapped)."""
    return _ratio(sizes, strata, reference == map_class, None)
