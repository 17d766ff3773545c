"""cryodesk.cli"""
