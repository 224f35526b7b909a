"""Where the checkout's parts are: this package is only ever run from a checkout (an
editable install), so its root and ``scripts/`` are at known places beside it."""
from pathlib import Path

# the repository root: configs/, corpus/, training/, scripts/ and the packages
ROOT = Path(__file__).resolve().parent.parent
# the command lines; some measurements run one in a child process (its record names it)
SCRIPTS = ROOT / "scripts"
