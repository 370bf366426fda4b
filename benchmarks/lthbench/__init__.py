
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src"
if str(SRC) not in sys.path:  # the package under test, from this checkout (no install needed)
    sys.path.insert(0, str(SRC))
