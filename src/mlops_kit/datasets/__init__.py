"""Data sets the kit ships (generated, never downloaded)."""
