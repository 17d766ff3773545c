"""cryodesk.core"""
