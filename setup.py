"""Build hook: the project's metadata is in pyproject.toml; this only adds the one C extension.

``cryodesk.kernels._f16c`` converts float32 to float16 with the CPU's F16C instruction
(cryodesk/kernels/f16c.py).  It is optional: without a C compiler the install goes on and the
float16 conversion falls back to numba or numpy (the same bits, slower).
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("cryodesk.kernels._f16c", ["cryodesk/kernels/_f16c.c"], optional=True,
                             extra_compile_args=["-O2"])])
