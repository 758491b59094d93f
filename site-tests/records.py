"""Report GPU-tier blocks whose record is missing, stale or failing.

    python site-tests/records.py report   # list them (make test)
    python site-tests/records.py check    # and fail if there are any (make publish-check)
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from book.records import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
