"""Trial histories and the outcome mini-language.

``"1NNN 2NTN 3TT"`` reads: a cohort of three at dose 1 with no events, a cohort of three at
dose 2 where the second patient had a toxicity, a cohort of two at dose 3 both toxic.  Doses
are 1-based in the language and 0-based everywhere in code.  Letters: ``N`` no event, ``T``
toxicity, ``E`` efficacy, ``B`` both.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

#: Most dose levels a history may have.
MAX_DOSES = 1000
_COHORT = re.compile(r"^(\d+)([NTEB]+)$")
_LETTER = {(False, False): "N", (True, False): "T", (False, True): "E", (True, True): "B"}


@dataclass(frozen=True)
class TrialHistory:
    """Everything observed so far in one trial, patient by patient in order of dosing.

    ``dose`` holds 0-based dose indices; ``tox`` and ``eff`` the binary outcomes; ``cohort``
    the 0-based cohort number of each patient.  ``n_doses`` is the number of dose levels.
    """

    n_doses: int
    dose: tuple[int, ...] = ()
    tox: tuple[bool, ...] = ()
    eff: tuple[bool, ...] = ()
    cohort: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if isinstance(self.n_doses, bool) or not isinstance(self.n_doses, int) \
                or not 1 <= self.n_doses <= MAX_DOSES:
            raise ValueError(f"n_doses must be an integer from 1 to {MAX_DOSES}, got "
                             f"{self.n_doses!r}")
        n = len(self.dose)
        if not (len(self.tox) == len(self.eff) == len(self.cohort) == n):
            raise ValueError("dose, tox, eff and cohort must have one entry per patient")
        if any(not 0 <= d < self.n_doses for d in self.dose):
            raise ValueError(f"dose indices must lie in 0..{self.n_doses - 1}, got {self.dose}")

    @classmethod
    def parse(cls, text: str, n_doses: int) -> "TrialHistory":
        """Parse the outcome mini-language (see module docstring)."""
        if not isinstance(text, str):
            raise TypeError(f"a trial history is text such as '1NNN 2NTN', got "
                            f"{type(text).__name__}")
        if isinstance(n_doses, bool) or not isinstance(n_doses, int) or \
                not 1 <= n_doses <= MAX_DOSES:
            raise ValueError(f"n_doses must be an integer from 1 to {MAX_DOSES}, got {n_doses!r}")
        dose, tox, eff, cohort = [], [], [], []
        for c, token in enumerate(text.split()):
            m = _COHORT.match(token.upper())
            if not m:
                raise ValueError(
                    f"cannot read cohort {token!r} in {text!r}: expected a 1-based dose number "
                    "followed by one letter per patient from N, T, E, B (e.g. '2NTN')")
            d = int(m.group(1)) - 1
            if not 0 <= d < n_doses:
                raise ValueError(f"dose {d + 1} in {token!r} is outside 1..{n_doses}")
            for ch in m.group(2):
                dose.append(d)
                tox.append(ch in "TB")
                eff.append(ch in "EB")
                cohort.append(c)
        return cls(n_doses, tuple(dose), tuple(tox), tuple(eff), tuple(cohort))

    def format(self) -> str:
        """Inverse of :meth:`parse`."""
        parts: list[str] = []
        last = None
        for d, t, e, c in zip(self.dose, self.tox, self.eff, self.cohort):
            if c != last:
                parts.append(str(d + 1))
                last = c
            parts[-1] += _LETTER[(bool(t), bool(e))]
        return " ".join(parts)

    def add_cohort(self, dose: int, tox, eff=None) -> "TrialHistory":
        """A new history with one more cohort at ``dose`` (0-based)."""
        tox = tuple(bool(x) for x in tox)
        eff = tuple(bool(x) for x in (eff if eff is not None else [False] * len(tox)))
        c = (self.cohort[-1] + 1) if self.cohort else 0
        return TrialHistory(self.n_doses, self.dose + (dose,) * len(tox), self.tox + tox,
                            self.eff + eff, self.cohort + (c,) * len(tox))

    @property
    def n_patients(self) -> int:
        return len(self.dose)

    def counts(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Patients, toxicities and efficacy responses per dose (int64 arrays of length n_doses)."""
        d = np.asarray(self.dose, dtype=np.int64)
        n = np.bincount(d, minlength=self.n_doses).astype(np.int64)
        t = np.bincount(d, weights=np.asarray(self.tox, float), minlength=self.n_doses).astype(np.int64)
        e = np.bincount(d, weights=np.asarray(self.eff, float), minlength=self.n_doses).astype(np.int64)
        return n, t, e
