"""``python -m toyformer.bench``: the same as ``toyformer bench``."""

import sys

from toyformer.bench.main import main

sys.exit(main(prog="python -m toyformer.bench"))
