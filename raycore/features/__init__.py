"""Feature layer: tables and views declared once; one transform for training and serving.

- ``FeatureTable``: entity features materialised from a source table, with availability times.
- ``FeatureView``: entity keys + request inputs + tables → model features (one ``compute``),
  optionally with fitted state (encoders, vocabularies, scalers) saved in the model bundle;
  declared in Python modules or as YAML data (``raycore.features.declared``).
- ``compute_features``: the same ``compute`` over large frames on Ray Data (``map_batches``).
- ``point_in_time_join``: the training path (no value seen before it was available).
- ``OnlineStore`` (SQLite / Redis) + ``assemble_online``: the serving path.
"""

from raycore.features.assembly import assemble_online
from raycore.features.batch import compute_features
from raycore.features.declared import load_view_file
from raycore.features.online import (
    OnlineStore,
    RedisOnlineStore,
    SqliteOnlineStore,
    latest_rows,
    materialize_online,
    open_online_store,
)
from raycore.features.pit import point_in_time_join
from raycore.features.registry import feature_tables, feature_views, get_feature_view
from raycore.features.table import AVAILABLE_AT, FeatureField, FeatureTable
from raycore.features.view import AS_OF, FeatureView, InputField, TrainingFrame

__all__ = [
    "AS_OF",
    "AVAILABLE_AT",
    "FeatureField",
    "FeatureTable",
    "FeatureView",
    "InputField",
    "OnlineStore",
    "RedisOnlineStore",
    "SqliteOnlineStore",
    "TrainingFrame",
    "assemble_online",
    "compute_features",
    "feature_tables",
    "feature_views",
    "get_feature_view",
    "latest_rows",
    "load_view_file",
    "materialize_online",
    "open_online_store",
    "point_in_time_join",
]
