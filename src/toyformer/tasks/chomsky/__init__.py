"""The tasks of the Chomsky-hierarchy suite (Deletang et al. 2023), one file each, in the formats
of the reference code; ``suite.SUITE`` names all fifteen, three of which are toyformer's own
``parity``, ``reverse`` and ``sort`` with the suite's parameters. Importing this package
registers the twelve new ones."""

from toyformer.tasks.chomsky import (  # noqa: F401  (each import registers its task)
    binary_addition,
    binary_multiplication,
    compute_sqrt,
    cycle_navigation,
    duplicate_string,
    even_pairs,
    missing_duplicate_string,
    modular_arithmetic_brackets,
    modular_arithmetic_simple,
    odds_first,
    solve_equation,
    stack_manipulation,
)
from toyformer.tasks.chomsky.suite import LEVELS, SUITE, SuiteTask, until_end

__all__ = ["LEVELS", "SUITE", "SuiteTask", "until_end"]
