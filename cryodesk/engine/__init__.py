"""cryodesk.engine"""
