"""The model catalog: YAML files shipped as package data, validated into ModelSpecs.

A user adds a model by adding one ``mdl-NNN.yaml`` file, either to the package
folder ``raycore/catalog/models/`` or to a folder named by ``FOUNDRY_CATALOG_DIR``.

Example:
    >>> from raycore.catalog import load_catalog
    >>> catalog = load_catalog()
    >>> catalog.get("mdl-001").name
    'sales_forecasting'
"""

from raycore.catalog.loader import Catalog, load_catalog, packaged_models_dir

__all__ = ["Catalog", "load_catalog", "packaged_models_dir"]
