"""HTTP: thin route handlers, rendering, and the mapping of failures to answers."""
