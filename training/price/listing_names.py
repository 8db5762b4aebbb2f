"""Write ``tests/fixtures/listing_names.csv``: car names as used-car listings spell them (issue 28).

What ``carvalue price --csv`` must price (>= 95%): real make/model/year names, built from the
two sources the issue names:

- **makes as the listings spell them**: the Craigslist listings' ``manufacturer`` values
  ("mercedes-benz", "alfa-romeo", "rover"), each make drawn as often as it is listed;
- **models and years from the catalogue**: a model of that make the MSRP table lists, in a
  model year the table lists for it (or, for a model still sold when the table ends, a year
  up to 2022, the listings' newest), so every name is a car that was made;
- **spelled as sellers type them**: upper case, lower case, hyphens and spaces dropped
  ("CRV", "3SERIES", "ECLASS", "F150"), trim words after the model ("LE", "XLT", "4dr"),
  the year first or last;
- plus a hand-written list of common listing spellings (aliases: "chevy silverado",
  "vw jetta", "mercedes c300").

Makes the listings have and the MSRP table lacks (Jeep, Ram after 2010, Mini, Mercury, Saturn,
Jaguar) cannot be named from the catalogue: ``listing_names_outside.csv`` lists such names, for
the test that each gets one line saying the catalogue lacks it.
"""

from __future__ import annotations

import csv
import gzip
import random
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from core.catalogue import load_catalogue
from training.price.listings import CRAIGSLIST

OUT = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "listing_names.csv"
N = 400
TRIMS = ("", "", "", " LE", " XLT", " 4dr", " Sport", " limited", " SE", " AWD")
HAND: tuple[tuple[str, str, int], ...] = (
    ("chevy", "silverado 1500", 2015), ("Chevy", "Silverado", 2016), ("vw", "jetta", 2012), ("VW", "Passat", 2014),
    ("mercedes", "c300", 2016), ("Mercedes Benz", "E350", 2014), ("MERCEDES-BENZ", "ECLASS", 2010),
    ("ford", "f150", 2014), ("FORD", "F-150 XLT", 2017), ("Ford", "F 150", 2013), ("honda", "crv", 2015),
    ("HONDA", "CR-V EX", 2019), ("bmw", "328i", 2012), ("BMW", "3 SERIES", 2011), ("toyota", "4 runner", 2014),
    ("Toyota", "Camry LE", 2018), ("nissan", "altima 2.5 s", 2015), ("gmc", "sierra", 2015),
    ("GMC", "Sierra 1500 SLE", 2016), ("lexus", "rx350", 2013), ("mazda", "mazda3", 2016), ("Mazda", "CX-5", 2017),
    ("hyundai", "elantra", 2013), ("kia", "soul", 2014), ("subaru", "outback", 2012), ("Subaru", "Forester", 2015),
    ("dodge", "grand caravan", 2012), ("Dodge", "Charger SXT", 2014), ("chrysler", "town and country", 2012),
    ("acura", "mdx", 2010), ("infiniti", "g37", 2011), ("cadillac", "escalade", 2015), ("buick", "enclave", 2013),
    ("audi", "a4", 2012), ("volvo", "xc90", 2016), ("rover", "range rover sport", 2014), ("alfa-romeo", "giulia", 2017),
    ("tesla", "model s", 2015), ("porsche", "cayenne", 2013), ("lincoln", "mkz", 2014),
)
OUTSIDE: tuple[tuple[str, str, int], ...] = (
    ("jeep", "wrangler", 2015), ("jeep", "grand cherokee", 2014), ("ram", "1500", 2019), ("ram", "2500", 2018),
    ("mini", "cooper", 2013), ("mercury", "grand marquis", 2005), ("saturn", "vue", 2008), ("jaguar", "xf", 2012),
)


def spell(rng: random.Random, model: str) -> str:
    style = rng.choice(("as is", "upper", "lower", "no hyphens", "no spaces"))
    m = {"as is": model, "upper": model.upper(), "lower": model.lower(),
         "no hyphens": model.replace("-", ""), "no spaces": model.replace(" ", "")}[style]
    return m + rng.choice(TRIMS)


def build(seed: int = 28) -> list[tuple[str, str, int]]:
    cat = load_catalogue()
    with gzip.open(CRAIGSLIST, "rt", encoding="utf-8", newline="") as f:
        makes = Counter(r["manufacturer"].strip() for r in csv.DictReader(f))
    rng = random.Random(seed)
    by_make: dict[str, list] = {}
    for listing_make in makes:
        hit = cat._make_keys.get("".join(ch for ch in listing_make.lower() if ch.isalnum()))
        if hit is not None and hit[1] == "":
            by_make[listing_make] = [cm for cm in cat.models if cm.make == hit[0] and cm.msrps]
    names: list[tuple[str, str, int]] = []
    pool = [m for m in makes if by_make.get(m)]
    weights = [makes[m] for m in pool]
    while len(names) < N:
        make = rng.choices(pool, weights)[0]
        cm = rng.choice(by_make[make])
        last = 2022 if cat.current(cm) else cm.last_year
        year = rng.randint(max(cm.first_year, 1990), last)
        spelled_make = rng.choice((make, make.upper(), make.title()))
        names.append((spelled_make, spell(rng, cm.model), year))
    return names + list(HAND)


def write(names: list[tuple[str, str, int]], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["make", "model", "year"])
        w.writerows(names)


def main(argv: Sequence[str] | None = None) -> int:
    if argv:
        print(f"listing_names takes no arguments, got {' '.join(argv)}", file=sys.stderr)
        return 2
    write(build(), OUT)
    write(list(OUTSIDE), OUT.with_name("listing_names_outside.csv"))
    print(f"wrote {OUT} and {OUT.with_name('listing_names_outside.csv')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
