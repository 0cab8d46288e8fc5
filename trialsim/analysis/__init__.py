"""Estimation used by designs and reports, and usable on real trial data.

* :func:`mcpmod` — MCP-Mod dose-response analysis (:mod:`trialsim.analysis.doseresponse`);
* :mod:`trialsim.analysis.mvt` — multivariate normal and t probabilities and quantiles;
* :mod:`trialsim.analysis.crm` — the CRM posterior (import it directly).
"""
from trialsim.analysis.doseresponse import MCPModResult, mcpmod  # noqa: F401
