"""The ``trialsim`` command's entry point, outside the package so that it runs before the
package's imports (numpy, numba, ...): a Ctrl-C or SIGTERM during start-up ends with the same
one line and exit status as during a run, not a traceback."""
from __future__ import annotations

import signal
import sys


def _early(signum, frame):  # pragma: no cover - exercised in a subprocess test
    print("\ninterrupted: nothing was written" if signum == signal.SIGINT
          else "terminated: nothing was written", file=sys.stderr)
    raise SystemExit(130 if signum == signal.SIGINT else 143)


def main() -> int:
    for s in (signal.SIGINT, signal.SIGTERM):
        signal.signal(s, _early)
    from trialsim.cli import main as run
    return run()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
