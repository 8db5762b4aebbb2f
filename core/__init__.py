"""CarValue core: model definition, model file contract, preprocessing, prediction.

`core` never imports Qt. The inference path (`core.preprocess`, `core.modelfile`,
`core.predictor`, `core.cli`) never imports torch; only `core.model` does, and only training
and export import that.
"""
