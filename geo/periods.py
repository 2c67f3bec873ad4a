"""Dry-season periods. Season ``2019-20`` runs from 1 November 2019 to 30 April 2020.

The Kachin dry season (Nov–Apr) has the fewest clouds; composites are built per season.
A season is named by the year it begins: ``--start 2019 --end 2024`` means 2019-20 … 2024-25.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from geo.errors import PeriodError

#: First season with Sentinel-2 L2A over Myanmar in Earth Search/Planetary Computer archives.
FIRST_SEASON_YEAR = 2015


@dataclass(frozen=True, order=True)
class Period:
    """One analysis period (inclusive dates).

    Attributes:
        start: first day (inclusive).
        end: last day (inclusive).
        label: short name used in file names and tables, e.g. ``"2019-20"``.
    """

    start: dt.date
    end: dt.date
    label: str

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise PeriodError(f"period {self.label!r} ends ({self.end}) before it starts ({self.start})")

    @property
    def interval(self) -> str:
        """RFC 3339 interval for STAC ``datetime`` searches."""
        return f"{self.start.isoformat()}T00:00:00Z/{self.end.isoformat()}T23:59:59Z"

    def contains(self, when: dt.date | dt.datetime) -> bool:
        d = when.date() if isinstance(when, dt.datetime) else when
        return self.start <= d <= self.end


def dry_season(year: int) -> Period:
    """The dry season that begins in November of ``year``."""
    return Period(dt.date(year, 11, 1), dt.date(year + 1, 4, 30), f"{year}-{(year + 1) % 100:02d}")


def dry_seasons(start_year: int, end_year: int, *, today: dt.date | None = None) -> list[Period]:
    """Seasons beginning in ``start_year`` … ``end_year`` (inclusive).

    Raises:
        PeriodError: end before start, before Sentinel-2 L2A, or a season that has not begun yet.
    """
    today = today or dt.date.today()
    if end_year < start_year:
        raise PeriodError(
            f"end year {end_year} is before start year {start_year}; "
            "seasons are named by the year they begin, e.g. --start 2019 --end 2024"
        )
    if start_year < FIRST_SEASON_YEAR:
        raise PeriodError(
            f"start year {start_year} is before Sentinel-2 L2A coverage; use {FIRST_SEASON_YEAR} or later"
        )
    last = dry_season(end_year)
    if last.start > today:
        raise PeriodError(
            f"season {last.label} begins on {last.start}, which is in the future; "
            f"use --end {today.year - 1 if today.month < 11 else today.year} or earlier"
        )
    return [dry_season(y) for y in range(start_year, end_year + 1)]


def _partial_date(text: str, *, end: bool) -> dt.date:
    """An ISO date, or a STAC-style partial one: ``YYYY-MM`` (its first day, or its last when ``end``) or
    ``YYYY`` (1 January, or 31 December when ``end``)."""
    import calendar

    text = text.strip()
    if len(text) == 4 and text.isdigit():
        return dt.date(int(text), 12, 31) if end else dt.date(int(text), 1, 1)
    if len(text) == 7 and text[4] == "-" and text[:4].isdigit() and text[5:].isdigit():
        y, m = int(text[:4]), int(text[5:])
        if not 1 <= m <= 12:
            raise ValueError(text)
        return dt.date(y, m, calendar.monthrange(y, m)[1] if end else 1)
    return dt.date.fromisoformat(text)


def parse_interval(text: str) -> Period:
    """Parse ``START/END`` (ISO dates, e.g. ``2023-11-01/2024-04-30``; STAC-style partial dates ``2023-11/2024-04``
    or ``2023/2024`` cover whole months or years) into a :class:`Period`."""
    parts = text.split("/")
    if len(parts) != 2:
        raise PeriodError(f"period {text!r} must look like 2023-11-01/2024-04-30 (START/END, ISO dates)")
    try:
        start, end = _partial_date(parts[0], end=False), _partial_date(parts[1], end=True)
    except ValueError:
        raise PeriodError(f"period {text!r} holds a malformed date; write dates as YYYY-MM-DD "
                          "(or YYYY-MM / YYYY for whole months / years)") from None
    if end < start:  # name the text as written, not the file-name label Period would show
        raise PeriodError(f"period {text!r} ends ({end}) before it starts ({start}); "
                          "write START/END with the earlier date first")
    return Period(start, end, f"{start.isoformat()}_{end.isoformat()}")
