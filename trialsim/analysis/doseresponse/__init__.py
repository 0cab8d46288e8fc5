"""Dose-response analysis by MCP-Mod: candidate models (:mod:`.models`), dose-level estimates
from patient data or given (:mod:`.estimates`), optimal contrasts and the multiple contrast
test (:mod:`.contrasts`), model fits (:mod:`.fitting`), target doses (:mod:`.targets`), and the
whole procedure (:func:`mcpmod`)."""
from trialsim.analysis.doseresponse.contrasts import (ContrastTest, contrast_correlation,
                                                      contrast_test, optimal_contrasts)
from trialsim.analysis.doseresponse.estimates import (DoseEstimates, from_binary, from_general,
                                                      from_normal)
from trialsim.analysis.doseresponse.fitting import Fit, fit_model
from trialsim.analysis.doseresponse.models import FAMILIES, Candidates, family
from trialsim.analysis.doseresponse.procedure import MCPModResult, analyse, mcpmod
from trialsim.analysis.doseresponse.targets import effective_dose, target_dose

__all__ = ["ContrastTest", "contrast_correlation", "contrast_test", "optimal_contrasts",
           "DoseEstimates", "from_binary", "from_general", "from_normal", "Fit", "fit_model",
           "FAMILIES", "Candidates", "family", "MCPModResult", "analyse", "mcpmod",
           "effective_dose", "target_dose"]
