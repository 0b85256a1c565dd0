"""World calendar and vendor timestamp formats.

All simulated instants are int64 *seconds since world start* (negative before it); days are int
offsets from world start. Formatting is vectorised through numpy datetime64.
"""

from __future__ import annotations

from datetime import date

import numpy as np

DAY = 86_400


class Calendar:
    """Months ``0..M-1`` from ``start`` (the first of a month); the world ends on the last day of month M-1."""

    def __init__(self, start: date, months: int):
        self.start = start
        self.months = months
        self.start64 = np.datetime64(start, "D")
        starts = (self.start64.astype("M8[M]") + np.arange(months + 1)).astype("M8[D]")
        self.month_start = (starts - self.start64).astype(np.int64)  # (M+1,), last = n_days
        self.n_days = int(self.month_start[-1])
        self.end64 = self.start64 + (self.n_days - 1)
        self.end = self.end64.astype(object)
        self.day_month = np.repeat(np.arange(months), np.diff(self.month_start))
        self.weekday = (self.start64 + np.arange(self.n_days)).astype(
            "int64"
        ) + 3  # 1970-01-01 was a Thursday
        self.weekday %= 7  # 0 = Monday
        self.epoch0 = int(self.start64.astype("M8[s]").astype("int64"))

    def add_months(self, day: np.ndarray, k: np.ndarray | int) -> np.ndarray:
        """Same day-of-month ``k`` months later (callers keep days-of-month <= 28)."""
        d64 = self.start64 + np.asarray(day, dtype=np.int64)
        ym = d64.astype("M8[M]")
        dom = d64 - ym.astype("M8[D]")
        out = (ym + np.asarray(k, dtype=np.int64)).astype("M8[D]") + dom
        return (out - self.start64).astype(np.int64)

    def month_of(self, day: np.ndarray) -> np.ndarray:
        """Month index of each day (-1 before the world, M after it)."""
        return np.searchsorted(self.month_start, np.asarray(day), side="right") - 1

    def day_of_month(self, day: np.ndarray) -> np.ndarray:
        d64 = self.start64 + np.asarray(day, dtype=np.int64)
        return (d64 - d64.astype("M8[M]").astype("M8[D]")).astype(np.int64) + 1

    # --- formats -----------------------------------------------------------------------------
    def _dt(self, sec: np.ndarray) -> np.ndarray:
        return self.start64.astype("M8[s]") + np.asarray(sec, dtype=np.int64)

    def sf_ts(self, sec) -> list[str]:
        """Salesforce: 2024-01-03T10:00:00.000+0000."""
        s = np.datetime_as_string(self._dt(sec).astype("M8[ms]"), unit="ms")
        return [x + "+0000" for x in s.tolist()]

    def hs_ts(self, sec) -> list[str]:
        """HubSpot: 2024-01-03T10:00:00.000Z."""
        s = np.datetime_as_string(self._dt(sec).astype("M8[ms]"), unit="ms")
        return [x + "Z" for x in s.tolist()]

    def gong_ts(self, sec) -> list[str]:
        """Gong: 2024-01-03T10:00:00Z."""
        s = np.datetime_as_string(self._dt(sec), unit="s")
        return [x + "Z" for x in s.tolist()]

    def iso_date(self, day) -> list[str]:
        return np.datetime_as_string(self.start64 + np.asarray(day, dtype=np.int64), unit="D").tolist()

    def epoch(self, sec) -> list[int]:
        return (np.asarray(sec, dtype=np.int64) + self.epoch0).tolist()

    def dates64(self, day) -> np.ndarray:
        """datetime64[ms] array of days (for DataFrames)."""
        return (self.start64 + np.asarray(day, dtype=np.int64)).astype("M8[ms]")
