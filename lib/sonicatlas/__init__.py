"""sonicatlas: distributed clustering of music catalogs by how they sound."""

__version__ = "0.1.0"
