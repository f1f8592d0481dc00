"""One adapter per provider protocol."""
