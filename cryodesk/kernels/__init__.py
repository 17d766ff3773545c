"""cryodesk.kernels"""
