"""Data layer: the simulated business, the lake, and (later) bronze/silver/gold."""
