"""Data Foundry: an open-source model foundry on Ray.

Import the layer you need (``raycore.specs``, ``raycore.training`` ...); this
package root imports nothing heavy.
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
