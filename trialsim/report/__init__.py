"""Reports: a self-contained HTML page (figures inline as SVG, no external requests) and the
same tables as CSV, from a run folder (``trialsim run``) or a sweep folder (``trialsim
sweep``)."""
from trialsim.report.html import write_report  # noqa: F401
