"""A photo's price under a model file: the catalogue, the file's price model, or its price head.

One dispatch for the app, the CLI and the export (issue 28): a car the user named is priced from
the catalogue; a file whose price model has a class table prices the photo's make/model/year
posterior through the catalogue (:mod:`core.carprice`) where it can; a price model without
classes calibrates the network's median head; a file without one shows the head's histogram.
The price model is parsed once, by the metadata (``ModelMetadata.parsed_price_model``).

Above :mod:`core.modelfile` and :mod:`core.carprice`; nothing below imports it.
"""

from __future__ import annotations

import dataclasses
import math

from core.carprice import named_car, price_car, price_photo, uses_catalogue, what_text
from core.catalogue import NotInCatalogue
from core.depreciation import load_depreciation
from core.modelfile import ModelMetadata
from core.pricing import (
    DEFAULT_DISPLAY_EDGES,
    PriceBasis,
    PriceEstimate,
    PriceInputs,
    bounds_of,
    current_year,
    head_estimate,
    what_sentence,
)


def listings_year() -> int:
    """The year of the listings the bundled prices were fitted on (resources/price/depreciation.json
    records it): a price head's dollars are of that year."""
    return load_depreciation().listings_year


def estimate_price(meta: ModelMetadata, basis: PriceBasis, inputs: PriceInputs) -> PriceEstimate:
    """The price for a model file: the price model's mixture when the file has one with a class
    table; its calibrated price head when it has one without (a model trained on listing
    prices); else the price head's histogram (a format-1 file: the value of its fixed year)."""
    if inputs.car:  # the car the user named (issue 28): its price, the photo's answer kept beside it
        try:
            return price_car(named_car(inputs.car, inputs.year), inputs, "user")
        except NotInCatalogue as e:
            est = estimate_price(meta, basis, dataclasses.replace(inputs, car=None))
            return dataclasses.replace(est, extra_notes=(*est.extra_notes, f"The car you named is not priced ({e}): "
                                                         "this is the photo's price."))
    model = meta.parsed_price_model
    if model is not None and model.classes:
        est = price_photo(meta.make_models, basis, inputs)  # the catalogue path (issue 28)
        if est is not None:
            return est
    if model is not None and not model.classes and math.isfinite(basis.head_median) and basis.head_median > 0:
        return model.estimate_head(basis.head_median, basis.year_probs, inputs)
    if model is None or not model.classes:
        return head_estimate(basis.head_bins, basis.head_median, inputs, meta.price.meaning, listings_year())
    return model.estimate(basis.probs, inputs, basis.head_median)


def describe(meta: ModelMetadata, year_of_sale: int | None = None) -> str:
    """What a model file's prices are, before any estimate (the app's model line)."""
    model = meta.parsed_price_model
    year = year_of_sale or current_year()
    if model is not None and model.classes and uses_catalogue(tuple(meta.make_models)):
        return what_text(year, model.listings_year, None)
    if model is None:
        return what_sentence("price_head", year, listings_year(), meta.price.meaning)
    return what_sentence("price_model" if model.classes else "price_head_calibrated", year, model.listings_year)


def display_bounds(meta: ModelMetadata) -> list[tuple[float, float | None]]:
    """The price ranges a model file's estimates carry (the price model's, else the head's)."""
    model = meta.parsed_price_model
    if model is not None and model.classes and uses_catalogue(tuple(meta.make_models)):
        return bounds_of(DEFAULT_DISPLAY_EDGES)
    return bounds_of(model.edges) if model is not None else meta.price.bounds()
