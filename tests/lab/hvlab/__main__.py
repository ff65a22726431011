"""python -m hvlab ...: what tests/lab/lab runs."""

import importlib.util
import sys

# PyYAML is the lab's only dependency beyond the standard library: say so plainly when it is missing.
if importlib.util.find_spec("yaml") is None:
    sys.exit("lab: PyYAML is required (run scripts/bootstrap.sh, or python3 -m pip install pyyaml)")

from hvlab.cli import main

sys.exit(main(sys.argv[1:]))
