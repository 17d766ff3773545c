"""cryodesk.ui"""
