"""Trial conduct in calendar time (simpy): accrual at sites, cohorts, observation windows,
waiting and turned-away patients, clinic chairs and opening hours.

The decisions of an escalation design depend on the outcomes, not on the calendar (except for
designs that weigh partial follow-up, which trialsim does not run in calendar time yet), so the
timed path first runs the trials in lockstep, then lays each trial's cohorts on its own
calendar: :func:`trialsim.conduct.calendar.trial_calendar`.  All randomness of the calendar
comes from the trial's ``accrual`` stream, and simpy orders simultaneous events by creation,
so a trial's calendar is reproducible and independent of the batch it ran in.
"""
from trialsim.conduct.spec import Conduct, Site  # noqa: F401
