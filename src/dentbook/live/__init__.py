"""Live calendars and dashboards: one listener per process, fanned out over SSE."""
