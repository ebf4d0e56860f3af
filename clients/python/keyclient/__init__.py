"""Typed clients and CLI for keyservice."""
