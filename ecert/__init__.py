"""ecert: electronic certificate and identity authority.

This package holds the composition root (settings, runtime wiring, CLI) and two leaf
modules every other package may import: :mod:`ecert.errors` and :mod:`ecert.clock`.
"""

__version__ = "0.1.0"
