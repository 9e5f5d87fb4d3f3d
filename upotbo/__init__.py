"""upotbo: full-space inverse materials design with universal potentials and Bayesian optimization.

Data flows one way: space -> build -> potentials -> properties -> search/storage -> validate,
landscape, report. Each subpackage has one job; see the README for the CLI.
"""

__version__ = "0.1.0"
