"""cryodesk.db"""
