"""Per-trial array bundles: stacking the batches of one run."""
from __future__ import annotations

import numpy as np


class PerTrial:
    """Mixin of frozen dataclasses whose every field is an array with one row per trial."""

    @classmethod
    def concat(cls, parts: list):
        """Stack batches of the same study (rows in the order given)."""
        if len(parts) == 1:
            return parts[0]
        return cls(**{f: np.concatenate([getattr(p, f) for p in parts])
                      for f in cls.__dataclass_fields__})
