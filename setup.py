"""The one compiled part: ``fusionbrain._ts2020``, the parser the official C2C scorer used.

py-tree-sitter 0.2.0's binding and tree-sitter runtime with the tree-sitter-python v0.16.1
grammar compiled in (csrc/ts2020, see its NOTICE.md).  Everything else is in pyproject.toml.
"""

import sys

from setuptools import Extension, setup

TS = "csrc/ts2020"
flags = [] if sys.platform == "win32" else ["-g0", "-fvisibility=hidden", "-Wno-unused-variable", "-Wno-unused-but-set-variable"]

setup(
    ext_modules=[
        Extension(
            "fusionbrain._ts2020",
            sources=[f"{TS}/runtime/src/lib.c", f"{TS}/python_parser.c", f"{TS}/python_scanner.cc", f"{TS}/binding.c"],
            include_dirs=[f"{TS}/runtime/include", f"{TS}/runtime/src"],
            extra_compile_args=flags,
            language="c++",  # links the scanner's C++ runtime
        )
    ],
)
