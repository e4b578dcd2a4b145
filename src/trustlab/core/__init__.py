"""The core every pillar builds on: models, data sets, metrics, safe weights, errors.

Submodules are imported on demand (``trustlab.core.models``, ``trustlab.core.data``,
``trustlab.core.metrics``, ``trustlab.core.weights``, ...); importing this package alone is
cheap.
"""
