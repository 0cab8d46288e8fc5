"""The ``conduct:`` section of an escalation study (calendar time; see
:mod:`trialsim.conduct`) and its fit with the design."""
from __future__ import annotations

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
    conduct = construct(Conduct, node, ("conduct",))
    q = p_leave_in_window(conduct)
    if q > MAX_LEAVING:
        raise ConfigError(f"at {conduct.dropout_per_week:g} per week, {100 * q:.4g} % of the "
                          f"patients leave within the {conduct.window_h:g}-h window, more than "
                          f"{100 * MAX_LEAVING:g} %: cohorts could hardly be filled with "
                          "evaluable patients (a hazard per week: was it given per day or per "
                          "hour?)", ("conduct", "dropout_per_week"))
    return conduct


#: The largest share of patients who may leave within the window (each evaluable patient then
#: takes five on average).
MAX_LEAVING = 0.8


def check_conduct(design_type: str, design, conduct) -> None:
    """A design deciding with partial follow-up needs a calendar; assessment visits matter to
    such designs only."""
    if design.follow_up and conduct is None:
        raise ConfigError(f"{design_type} decides with partial follow-up, on a calendar: add a "
                          "conduct: section (sites, window_h)", ("design", "type"))
    if design.backfills and conduct is None:
        raise ConfigError("backfill enrols the patients who arrive during a cohort's window: add "
                          "a conduct: section (sites, window_h)", ("design", "modifiers"))
    if conduct is not None and conduct.visits_h is not None and not design.follow_up:
        raise ConfigError(f"DLT assessment visits matter only to designs deciding with partial "
                          f"follow-up (tite_crm); {design_type} waits for each window's end: "
                          f"leave visits_h out", ("conduct", "visits_h"))
