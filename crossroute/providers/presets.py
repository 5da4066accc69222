"""Well-known hosts: a provider named after a preset (or with `preset:`) needs
only its keys. The data lives in crossroute/kinds.py, where the config reads it."""

from crossroute.kinds import PRESETS, Preset

__all__ = ["PRESETS", "Preset"]
