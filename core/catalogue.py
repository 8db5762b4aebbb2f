"""The catalogue: every car the app can price, with its new price (issue 28).

Read from ``resources/price/catalogue.json`` (written by ``training/price/catalogue_build.py``;
source and licence inside it and in ``resources/price/README.md``), never from ``../shared``.
A car is a make, model and model year with a body type and a new price (MSRP):

- a year the table has: its median MSRP over trims;
- a year from 1990 (the table's first) to the model's last that the table lacks a real MSRP for
  (the table samples a few years of most models: the F-150 only 2015-2017; before 2001 its
  prices are placeholders): the nearest real year's MSRP carried along the table's within-model
  yearly trend (+1.6 %/yr, measured when the file is built), and said so;
- a year after the model's last, for a model still sold when the table ends (its last year is
  the table's last or the one before) and no later than the year of sale: the last known MSRP
  carried forward along the same trend, and marked *extrapolated* in the price's words;
- a model the table names with no real MSRP at all (the Volvo 240, 1991-1993), and a network
  class the table lacks whose make it has (a Volvo XC90 of 2007, a Dodge Ram 3500): the price
  of a *typical* car of that make and body type, the median over the make's models of that body
  with real MSRPs, each carried to the year along the trend, and said so.  Without it, such a
  photo was priced by the network's median head, which never trained on a price for it (a 1993
  Volvo 240 in a busy scene: $68,900).

Names are forgiving, as people and listings spell them: case, spaces, hyphens and dots do not
count ("3 SERIES", "ECLASS", "F-150", "CR-V", "MERCEDES-BENZ"), the year may stand anywhere,
words after the model (trim: "Camry LE") are ignored, and :data:`MAKE_ALIASES` /
:data:`MODEL_ALIASES` name the spellings the table does not ("Chevy", "VW", "Silverado").

Leaf module: json + stdlib and core.report's dollar formatting (no numpy, no model file).
"""

from __future__ import annotations

import functools
import math
import re
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.money import whole_dollars
from core.paths import load_json_resource

CATALOGUE_VERSION = 1
FIRST_YEAR = 1990  # the MSRP table's first model year: no car is carried back before it
CATALOGUE_PATH = Path(__file__).resolve().parent.parent / "resources" / "price" / "catalogue.json"
YEAR_RE = re.compile(r"(?<![0-9])(19[5-9][0-9]|20[0-9][0-9]|2100)(?![0-9])")

# Compact spelling (lower case, letters and digits only) -> (catalogue make, text put in front
# of the model).  "ram 1500" is a Dodge "Ram Pickup 1500" in the table.
MAKE_ALIASES: dict[str, tuple[str, str]] = {
    "chevy": ("Chevrolet", ""), "chev": ("Chevrolet", ""), "vw": ("Volkswagen", ""), "volks": ("Volkswagen", ""),
    "mercedes": ("Mercedes-Benz", ""), "benz": ("Mercedes-Benz", ""), "mb": ("Mercedes-Benz", ""),
    "rover": ("Land Rover", ""), "landrover": ("Land Rover", ""), "alfa": ("Alfa Romeo", ""),
    "infinity": ("Infiniti", ""), "caddy": ("Cadillac", ""), "hyndai": ("Hyundai", ""), "hundai": ("Hyundai", ""),
    "ram": ("Dodge", "ram"), "rollsroyce": ("Rolls-Royce", ""), "astonmartin": ("Aston Martin", ""),
}
# (catalogue make, compact model spelling) -> the table's model name.  Only the same car under
# another name (a seller's badge or short form), never "a similar car".
MODEL_ALIASES: dict[tuple[str, str], str] = {
    ("Chevrolet", "silverado"): "Silverado 1500", ("GMC", "sierra"): "Sierra 1500",
    ("Dodge", "ram"): "Ram Pickup 1500", ("Dodge", "ram1500"): "Ram Pickup 1500",
    ("Dodge", "rampickup"): "Ram Pickup 1500", ("Dodge", "ramcargo"): "Ram Cargo",
    ("Mercedes-Benz", "c230"): "C-Class", ("Mercedes-Benz", "c250"): "C-Class", ("Mercedes-Benz", "c300"): "C-Class",
    ("Mercedes-Benz", "c350"): "C-Class", ("Mercedes-Benz", "e320"): "E-Class", ("Mercedes-Benz", "e350"): "E-Class",
    ("Mercedes-Benz", "e550"): "E-Class", ("Mercedes-Benz", "s550"): "S-Class", ("Mercedes-Benz", "ml350"): "M-Class",
    ("Mercedes-Benz", "mclass"): "M-Class", ("BMW", "328i"): "3 Series", ("BMW", "328"): "3 Series",
    ("BMW", "335i"): "3 Series", ("BMW", "325i"): "3 Series", ("BMW", "528i"): "5 Series", ("BMW", "535i"): "5 Series",
    ("Ford", "f150"): "F-150", ("Toyota", "4runner"): "4Runner", ("Mazda", "mazda3"): "3",
    ("Mazda", "mazda6"): "6", ("Mazda", "mazda5"): "5", ("Mazda", "mazda2"): "2", ("Mazda", "miata"): "MX-5 Miata",
    ("Lexus", "rx350"): "RX 350", ("Lexus", "es350"): "ES 350", ("Chevrolet", "silverado1500"): "Silverado 1500",
}


# Body words of class and listing names -> the table's body type ("Crew Cab" is a pickup).
BODY_WORDS = {"sedan": "sedan", "coupe": "coupe", "convertible": "convertible", "hatchback": "hatchback",
              "wagon": "wagon", "suv": "suv", "minivan": "minivan", "van": "van", "cab": "pickup",
              "supercab": "pickup", "sut": "pickup"}


def body_in_name(name: str) -> str | None:
    """The body type a name says ("... Crew Cab" -> pickup); the last such word wins ("E-Series
    Wagon Van" is a van); None when it says none."""
    hit = None
    for w in name.lower().split():
        hit = BODY_WORDS.get(w, hit)
    return hit


class NotInCatalogue(LookupError):
    """The catalogue cannot price this name (``str(e)``: one line saying why)."""


def compact(text: str) -> str:
    """What counts in a name: letters and digits, lower case ("F-150" == "f150" == "F 150")."""
    return re.sub(r"[^0-9a-z]", "", text.lower())


@dataclass(frozen=True)
class NewPrice:
    """A car's new price and where it comes from (``how``: table | carried | extrapolated)."""

    msrp: float
    how: str
    from_year: int
    year: int
    trend: float
    models: int = 0  # "typical": how many of the make's models of the body type it is the median of

    def words(self) -> str:
        if self.how == "table":
            return f"New price: the MSRP table's {self.year} median over trims ({whole_dollars(self.msrp)})."
        if self.how == "typical":
            return (f"New price of a typical car like it: the table has no MSRP for this model, so the median of "
                    f"the table's {self.models} models of the same make and body type, each carried along its "
                    f"within-model trend ({self.trend:+.1%}/yr) to {self.year} ({whole_dollars(self.msrp)}).")
        what = "extrapolated" if self.how == "extrapolated" else "carried"
        return (f"New price {what}: the table has no {self.year} MSRP for this model; its {self.from_year} MSRP "
                f"carried along the table's within-model trend ({self.trend:+.1%}/yr) to {whole_dollars(self.msrp)}.")


@dataclass(frozen=True)
class CatalogueCar:
    make: str
    model: str
    year: int
    body: str
    new_price: NewPrice

    @property
    def name(self) -> str:
        return f"{self.make} {self.model} {self.year}"


@dataclass(frozen=True)
class CarModel:
    make: str
    model: str
    body: str
    first_year: int
    last_year: int
    msrps: dict[int, float]


class Catalogue:
    """Lookups by name, by (make, model, year), and by a network class name."""

    def __init__(self, d: dict[str, Any]) -> None:
        if d.get("version") != CATALOGUE_VERSION:
            raise ValueError(f"catalogue version {d.get('version')!r}, this app reads {CATALOGUE_VERSION}")
        makes: list[str] = list(d["makes"])
        self.trend = float(d["msrp_trend_per_year"])
        self.table_last_year = int(d["table_last_year"])
        self.source, self.licence = str(d["source"]), str(d["licence"])
        self.models = [CarModel(makes[m[0]], str(m[1]), str(m[2]), int(m[3]), int(m[4]),
                                {int(y): float(v) for y, v in m[5].items()}) for m in d["models"]]
        self.classes: dict[str, tuple[int, int, str] | None] = {
            k: None if v is None else (int(v[0]), int(v[1]), str(v[2])) for k, v in d["classes"].items()}
        self.makes = makes
        self._make_keys: dict[str, tuple[str, str]] = {compact(m): (m, "") for m in makes}
        for k, v in MAKE_ALIASES.items():
            self._make_keys.setdefault(k, v)
        self._by_make: dict[str, dict[str, list[CarModel]]] = {}
        self._priced_bodies: dict[tuple[str, str], list[CarModel]] = {}  # (make, body) -> models with real MSRPs
        for cm in self.models:
            self._by_make.setdefault(cm.make, {}).setdefault(compact(cm.model), []).append(cm)
            if cm.msrps:
                self._priced_bodies.setdefault((cm.make, cm.body), []).append(cm)
        for (make, alias), target in MODEL_ALIASES.items():
            hits = [cm for cm in self.models if cm.make == make and cm.model == target]
            if hits and compact(alias) not in self._by_make.get(make, {}):
                self._by_make.setdefault(make, {})[compact(alias)] = hits

    # -- new prices ------------------------------------------------------------------------
    def current(self, cm: CarModel) -> bool:
        """Still sold when the table ends (so later model years exist)."""
        return cm.last_year >= self.table_last_year - 1

    def new_price(self, cm: CarModel, year: int, year_of_sale: int) -> NewPrice | None:
        """``cm``'s MSRP for ``year``; None when the model was not made that year (as far as
        the table knows) or the table has no real MSRP for it at all."""
        if not cm.msrps or year < FIRST_YEAR:
            return None
        if year > cm.last_year and not (self.current(cm) and year <= max(year_of_sale, cm.last_year)):
            return None
        if year in cm.msrps:
            return NewPrice(cm.msrps[year], "table", year, year, self.trend)
        near = min(cm.msrps, key=lambda y: (abs(y - year), -y))
        how = "extrapolated" if year > cm.last_year else "carried"
        msrp = round(cm.msrps[near] * math.exp(self.trend * (year - near)), 0)
        return NewPrice(msrp, how, near, year, self.trend)

    def typical_price(self, make: str, body: str, year: int) -> NewPrice | None:
        """What a new ``make`` ``body`` of ``year`` cost, for a model with no real MSRP: the
        median over the make's models of that body with real MSRPs, each carried from its
        nearest table year along the trend; None when the make has none or ``year`` is before
        the table's first."""
        if year < FIRST_YEAR:
            return None
        prices = []
        for cm in self._priced_bodies.get((make, body), []):
            near = min(cm.msrps, key=lambda y: (abs(y - year), -y))
            prices.append(cm.msrps[near] * math.exp(self.trend * (year - near)))
        if not prices:
            return None
        return NewPrice(round(statistics.median(prices), 0), "typical", year, year, self.trend, len(prices))

    def car(self, cm: CarModel, year: int, year_of_sale: int, body: str | None = None) -> CatalogueCar:
        price = self.new_price(cm, year, year_of_sale)
        typical = not cm.msrps and cm.first_year <= year <= cm.last_year  # priced as its make and body
        if price is None and typical:
            price = self.typical_price(cm.make, body or cm.body, year)
        if price is None:
            if typical:
                raise NotInCatalogue(f"{cm.make} {cm.model}: the MSRP table has no real new price for it, "
                                     f"nor for any other {cm.make} {body or cm.body}")
            if not cm.msrps:
                raise NotInCatalogue(f"{cm.make} {cm.model} {year}: the catalogue has this model for "
                                     f"{cm.first_year}-{cm.last_year} only")
            span = f"{FIRST_YEAR}-{cm.last_year}" + (f" (and later, up to the year of sale {year_of_sale})"
                                                        if self.current(cm) else "")
            raise NotInCatalogue(f"{cm.make} {cm.model} {year}: the catalogue has this model for {span}")
        return CatalogueCar(cm.make, cm.model, year, body or cm.body, price)

    # -- names -----------------------------------------------------------------------------
    def lookup(self, text: str, year_of_sale: int, year: int | None = None) -> CatalogueCar:
        """The car a free-text name means ("Toyota Camry 2016", "2014 FORD F-150 XLT");
        ``year`` when given separately.  Raises :class:`NotInCatalogue` with the reason."""
        text = " ".join(str(text).split())
        if year is None:
            years = YEAR_RE.findall(text)
            if not years:
                raise NotInCatalogue(f"{text!r}: no model year (e.g. 'Toyota Camry 2016')")
            year = int(years[-1])
            text = text[:text.rfind(years[-1])] + text[text.rfind(years[-1]) + 4:]
        key = compact(text)
        hits = [k for k in self._make_keys if key.startswith(k)]
        if not hits:
            raise NotInCatalogue(f"{text.strip()!r}: make not in the catalogue (its {len(self.makes)} makes are "
                                 "those of the MSRP table)")
        make, prefix = self._make_keys[max(hits, key=len)]
        rest = prefix + key[len(max(hits, key=len)):]
        models = self._by_make.get(make, {})
        fits = sorted((k for k in models if k and rest.startswith(k)), key=len, reverse=True)
        if not fits:
            raise NotInCatalogue(f"{make} {text.strip()!r}: model not in the catalogue" if rest else
                                 f"{make}: which model? (e.g. '{make} {next(iter(models.values()))[0].model} {year}')")
        first_error: NotInCatalogue | None = None
        for k in fits:  # the longest name that was made that year
            for cm in models[k]:
                try:
                    return self.car(cm, year, year_of_sale)
                except NotInCatalogue as e:
                    first_error = first_error or e
        assert first_error is not None
        raise first_error

    def class_car(self, class_name: str, year_of_sale: int) -> CatalogueCar | None:
        """The catalogue car of a network class ("Audi TTS Coupe 2012"); None if not joined."""
        hit = self.classes.get(class_name)
        if hit is None:
            return self._typical_class_car(class_name) if class_name in self.classes else None
        cm = self.models[hit[0]]
        try:
            return self.car(cm, hit[1], max(year_of_sale, hit[1]), hit[2])
        except NotInCatalogue:
            return None

    def _typical_class_car(self, class_name: str) -> CatalogueCar | None:
        """A class the table cannot join ("Volvo 240 Sedan 1993") as a typical car of its make,
        body type and year; None when the name lacks one of them or the make has no such body."""
        years = YEAR_RE.findall(class_name)
        body = body_in_name(class_name)
        makes = [m for m in self.makes if class_name.startswith(m + " ")]
        if not years or body is None or not makes:
            return None
        make, year = max(makes, key=len), int(years[-1])
        price = self.typical_price(make, body, year)
        if price is None:
            return None
        model = class_name[len(make):class_name.rfind(years[-1])].strip()
        return CatalogueCar(make, model, year, body, price)

    def names(self, year_of_sale: int) -> list[str]:
        """Every "Make Model Year" the catalogue prices up to ``year_of_sale`` (a completer's list)."""
        out = []
        for cm in self.models:
            last = max(cm.last_year, year_of_sale) if self.current(cm) else cm.last_year
            if cm.msrps:
                out += [f"{cm.make} {cm.model} {y}" for y in range(FIRST_YEAR, last + 1)
                        if self.new_price(cm, y, year_of_sale) is not None]
            else:  # priced as a typical car of its make and body (Catalogue.car)
                out += [f"{cm.make} {cm.model} {y}" for y in range(max(FIRST_YEAR, cm.first_year), cm.last_year + 1)
                        if self.typical_price(cm.make, cm.body, y) is not None]
        return out


@functools.lru_cache(maxsize=4)
def load_catalogue(path: str | None = None) -> Catalogue:
    """The bundled catalogue (or ``path``); raises OSError / ValueError naming the file."""
    return load_json_resource(path, CATALOGUE_PATH, Catalogue, "CarValue catalogue")

