"""dentbook: multi-tenant booking for dental clinics, with its guarantees in PostgreSQL."""

__version__ = "0.1.0"
