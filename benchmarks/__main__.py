"""``python -m benchmarks`` from the repository root: the same as ``toyformer bench`` (the
benchmarks live in the package, ``toyformer.bench``; the commands committed in ``docs/results/``
name this form)."""

import sys

from toyformer.bench.main import main

sys.exit(main(prog="python -m benchmarks"))
