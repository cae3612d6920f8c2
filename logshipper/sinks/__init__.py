"""Where buffered records go: kafka (the producer behind a small interface) and topic templates."""
