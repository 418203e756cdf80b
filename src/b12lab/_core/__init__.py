"""The pipeline's stages: read cells, normalize units, band, evaluate rules, build results."""
