"""The bottom layer: what every other layer may use (errors, settings, safe file writes).

Nothing here imports another cryodesk package.
"""
