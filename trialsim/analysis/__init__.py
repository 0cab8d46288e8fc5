"""Estimation used by designs and reports.

:mod:`trialsim.analysis.crm` holds the CRM posterior (import it directly; it is not imported
here so that ``import trialsim.analysis`` stays light and free of import cycles with
``trialsim.designs``)."""
