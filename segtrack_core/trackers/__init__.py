"""Tracker backends. Each module registers its backend with segtrack_core.registry on import."""
