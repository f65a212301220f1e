"""Builds the optional compiled engine; everything else is in pyproject.toml.

Without a C compiler the build of wengert._speedups is skipped and wengert runs on its
pure-Python engine (wengert/_core.py), which computes the same results more slowly.
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("wengert._speedups", ["src/wengert/_speedups.c"], optional=True),
                   Extension("wengert.numpy._kernels", ["src/wengert/numpy/_kernels.c"], optional=True)])
