"""Loopback emulators of each provider protocol, with fault injection."""
