"""The sites of one trial on a simpy calendar: arrivals screened and queued in order, the waiting
limit, and the chairs where patients are dosed.  Shared by the escalation calendar
(:func:`trialsim.conduct.calendar.trial_calendar`) and the backfill engine
(:mod:`trialsim.conduct.backfill`)."""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import simpy

from trialsim.conduct.spec import HOURS_PER_WEEK, Conduct


class Clinic:
    """Arrivals at every site of ``conduct`` (Poisson, from each site's opening; a share
    ``screen_fail`` fails screening), queued in ``queue`` as ``(arrival time, arrival id,
    site)`` until taken or turned away after ``max_wait_days`` (:meth:`expire`), with
    ``on_arrival(id)`` called after each queued arrival; sessions at the sites' chairs
    (:meth:`session`).  Counts and times go to ``cal`` (a ``TrialCalendar``); arrivals stop
    once ``closed`` is triggered.  The arrival processes start on construction."""

    def __init__(self, env: simpy.Environment, conduct: Conduct, rng: np.random.Generator,
                 cal, on_arrival: Callable[[int], None]):
        self.env, self.conduct, self.rng, self.cal = env, conduct, rng, cal
        self.queue: list[tuple[float, int, int]] = []
        self.chairs = [simpy.Resource(env, capacity=s.chairs) for s in conduct.sites]
        self.closed = env.event()
        self._on_arrival = on_arrival
        for j, site in enumerate(conduct.sites):
            env.process(self._arrivals(j, site))

    def note(self, event: str, pid: int = -1, site: int = -1, dose: int = -1) -> None:
        """Log ``(time_h, event, patient, site, dose)`` if the calendar keeps a log."""
        if self.cal.events is not None:
            self.cal.events.append((self.env.now, event, pid, site, dose))

    def _arrivals(self, j: int, site):
        env, c, cal = self.env, self.conduct, self.cal
        yield env.timeout(site.opens_week * HOURS_PER_WEEK)
        gap = HOURS_PER_WEEK / site.rate_per_week
        while not self.closed.triggered:
            yield env.timeout(self.rng.exponential(gap))
            if self.closed.triggered:
                return
            cal.screened += 1
            pid = cal.screened
            if c.screen_fail and self.rng.random() < c.screen_fail:
                cal.screen_failed += 1
                self.note("screen_fail", pid, j)
                continue
            self.queue.append((env.now, pid, j))
            self.note("arrive", pid, j)
            self._on_arrival(pid)

    def expire(self) -> None:
        """Turn away the patients who have waited longer than ``max_wait_days``."""
        limit = self.conduct.max_wait_days * 24.0
        while self.queue and self.env.now - self.queue[0][0] > limit:
            _, pid, j = self.queue.pop(0)
            self.cal.turned_away += 1
            self.note("turned_away", pid, j)

    def session(self, j: int, start: Callable[[], None]):
        """A chair at site ``j`` from the first opening it is free: ``start()`` when the
        session starts; the chair stays taken for the session (a simpy process body)."""
        env, c = self.env, self.conduct
        with self.chairs[j].request() as req:
            yield req
            begin = c.next_open(env.now)
            if begin > env.now:
                yield env.timeout(begin - env.now)
            self.cal.sessions.append((j, env.now))
            start()
            if c.session_h:
                yield env.timeout(c.session_h)
