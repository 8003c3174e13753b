"""The central writer: room readings, sensor health and dead letters into the store."""
