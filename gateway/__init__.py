"""The edge service: validate device readings, map devices to rooms, strip device identity,
dead-letter bad input with a reason, and store-and-forward room readings upstream."""
