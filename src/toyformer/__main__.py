import sys

from toyformer.cli import main

sys.exit(main())
