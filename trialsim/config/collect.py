"""Collecting the errors of independent checks, to report them together."""
from __future__ import annotations

from trialsim.errors import ConfigError, ConfigErrors


class Collector:
    """Runs independent checks and keeps every ConfigError, to report them together."""

    def __init__(self) -> None:
        self.errors: list[ConfigError] = []

    def attempt(self, fn, *args):
        """``fn(*args)``, or None after recording its ConfigError(s)."""
        try:
            return fn(*args)
        except ConfigErrors as e:
            self.errors.extend(e.errors)
        except ConfigError as e:
            self.errors.append(e)
        return None

    def raise_any(self) -> None:
        if self.errors:
            raise ConfigErrors(self.errors)
