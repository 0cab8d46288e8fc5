"""The ``conduct:`` section of an escalation study (calendar time; see
:mod:`trialsim.conduct`) and its fit with the design."""
from __future__ import annotations

import math

from scipy import stats

from trialsim.conduct.dropout import p_leave_in_window
from trialsim.config.build import construct, construct_each, describe_value, expect_mapping
from trialsim.errors import ConfigError


def conduct_section(doc):
    """The study's ``conduct:`` section as a :class:`~trialsim.conduct.Conduct`."""
    from trialsim.conduct import Conduct, Site
    node = dict(expect_mapping(doc["conduct"], ("conduct",), "the conduct section (sites:, "
                                                             "window_h:, ...)"))
    sites = node.get("sites")
    if not isinstance(sites, list) or not sites:
        raise ConfigError(f"expected a non-empty list of sites ({{rate_per_week: ...}}), got "
                          f"{describe_value(sites)}", ("conduct", "sites"))
    node["sites"] = construct_each(Site, sites, ("conduct", "sites"), "a site")
    return construct(Conduct, node, ("conduct",))


#: The largest share of patients who may leave within the window in a design that replaces
#: them (each evaluable patient then takes five on average).
MAX_LEAVING = 0.8
#: The longest a cohort may expect to take to gather within the waiting limit (weeks).
MAX_GATHER_WEEKS = 104.0


def check_conduct(design_type: str, design, conduct) -> None:
    """A design deciding with partial follow-up needs a calendar; assessment visits matter to
    such designs only."""
    if design.follow_up and conduct is None:
        raise ConfigError(f"{design_type} decides with partial follow-up, on a calendar: add a "
                          "conduct: section (sites, window_h)", ("design", "type"))
    if design.backfills and conduct is None:
        raise ConfigError("backfill enrols the patients who arrive during a cohort's window: add "
                          "a conduct: section (sites, window_h)", ("design", "modifiers"))
    if conduct is None:
        return
    q = p_leave_in_window(conduct)
    if q > MAX_LEAVING and not design.follow_up:
        raise ConfigError(f"at {conduct.dropout_per_week:g} per week, {100 * q:.4g} % of the "
                          f"patients leave within the {conduct.window_h:g}-h window, more than "
                          f"{100 * MAX_LEAVING:g} %: cohorts could hardly be filled with "
                          "evaluable patients (a hazard per week: was it given per day or per "
                          "hour?)", ("conduct", "dropout_per_week"))
    rate = eligible_rate(conduct)
    if 1.0 / rate > MAX_GATHER_WEEKS:
        raise ConfigError(f"eligible patients arrive about once every {1 / rate:,.0f} weeks "
                          f"({rate:.3g} a week with every site open, screening and the "
                          "population's eligibility criteria included): raise the arrival "
                          "rates or widen the criteria", ("conduct", "sites"))
    # a cohort waits for all its patients at once (with backfill it fills one at a time)
    weeks = 0.0 if design.backfills else gather_weeks(conduct, int(design.cohort_size))
    if weeks > MAX_GATHER_WEEKS:
        raise ConfigError(f"a cohort of {design.cohort_size} forms only when that many eligible "
                          f"patients arrive within max_wait_days ({conduct.max_wait_days:g} "
                          f"days): even with every site open, about once every {weeks:,.0f} "
                          f"weeks at {rate:.3g} eligible arrivals a week; allow a longer wait",
                          ("conduct", "max_wait_days"))
    if conduct.visits_h is not None and not design.follow_up:
        raise ConfigError(f"DLT assessment visits matter only to designs deciding with partial "
                          f"follow-up (tite_crm); {design_type} waits for each window's end: "
                          f"leave visits_h out", ("conduct", "visits_h"))


def eligible_rate(conduct) -> float:
    """Eligible arrivals a week with every site open (screening, and the population's
    eligibility where folded into it, included)."""
    return sum(s.rate_per_week for s in conduct.sites) * (1.0 - conduct.screen_fail)


def gather_weeks(conduct, size: int) -> float:
    """Roughly the weeks a cohort of ``size`` takes to form when every patient waits at most
    ``max_wait_days``, with every site open: the mean time to an eligible arrival with at least
    ``size - 1`` others in the ``max_wait_days`` before it (Poisson arrivals); exact for a
    cohort of one, close where such bunches are rare, which is where it matters."""
    rate = eligible_rate(conduct)
    mean = rate * conduct.max_wait_days / 7.0      # eligible arrivals within one wait
    p = 1.0 if size <= 1 else float(stats.poisson.sf(size - 2, mean))
    return math.inf if p <= 0.0 else 1.0 / (rate * p)
