"""Model features: the hourly grid, its two adapters (table and live context) and the one causal extractor."""

from scoring.features.catalogue import FEATURE_INDEX, FEATURES, FeatureSpec
from scoring.features.extract import FeatureMatrix, extract
from scoring.features.grid import GRID_KINDS, HourlyGrid, grid_from_context, grid_from_table, stack_grids

__all__ = [
    "FEATURES",
    "FEATURE_INDEX",
    "GRID_KINDS",
    "FeatureMatrix",
    "FeatureSpec",
    "HourlyGrid",
    "extract",
    "grid_from_context",
    "grid_from_table",
    "stack_grids",
]
