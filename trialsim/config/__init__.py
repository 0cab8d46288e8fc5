"""YAML → validated objects: every piece of YAML handling in trialsim lives here.

:mod:`.reader` (safe YAML), :mod:`.build` (registry ``type:`` → instances, errors with YAML
paths), :mod:`.pk` (the ``pk:`` section), :mod:`.study` (study files), :mod:`.overrides`
(``--set``) and :mod:`.probe` (the dry run that makes ``validate`` as strict as ``run``).
"""
from trialsim.config.overrides import apply_overrides  # noqa: F401
from trialsim.config.reader import parse_yaml, read_yaml  # noqa: F401
from trialsim.config.study import from_dict, load, study_to_yaml  # noqa: F401
