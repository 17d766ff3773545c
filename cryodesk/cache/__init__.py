"""cryodesk.cache"""
