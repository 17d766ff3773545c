"""cryodesk.io"""
