"""Measure how much static and dynamic information any model's layers encode on any dataset.

A thin shim over ``lit_stbias.analysis.cli:main`` (see ``python analyze.py --help`` and docs/analysis.md).
"""
import sys

from lit_stbias.analysis.cli import main

if __name__ == "__main__":
    sys.exit(main())
