"""YAML study files → validated Study objects."""
from trialsim.config.loader import apply_overrides, from_dict, load, read_yaml, study_to_yaml  # noqa: F401
