"""upotbo: full-space inverse materials design with universal potentials and Bayesian optimization.

Data flows one way: space -> crystal -> potentials -> properties -> search/storage -> validate,
landscape, report. Each subpackage has one job; see the README for the CLI.
"""

import os

# spglib's C library prints "spglib: ... failed." on stderr for cells it cannot symmetrize; upotbo
# records those crystals as P1, and users read the lines as errors (processes started later inherit it).
os.environ.setdefault("SPGLIB_WARNING", "OFF")

__version__ = "0.1.0"
