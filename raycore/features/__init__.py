"""Feature layer: views declared once, one transform for training and serving."""

from raycore.features.registry import feature_views, get_feature_view
from raycore.features.view import FeatureView, InputField

__all__ = ["FeatureView", "InputField", "feature_views", "get_feature_view"]
