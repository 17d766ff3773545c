"""cryodesk: data management for cryo-EM processing projects."""

__version__ = "0.1.0"
