"""Transforms between the sources and the buffer: enrich (container metadata), multiline (joining)."""
