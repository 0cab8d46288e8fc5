"""Errors raised for bad input: they name the file, the YAML path and what was expected."""
from __future__ import annotations


def format_path(path: tuple) -> str:
    """Render a YAML path such as ('design', 'skeleton', 2) as ``design.skeleton[2]``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "<top level>"


class ConfigError(ValueError):
    """A configuration value is wrong.

    ``path`` is the YAML path relative to the document root (a tuple of keys and list
    indices); ``file`` the file it came from, when there is one.  Code below the config
    layer raises it with the path it knows; the loader prefixes the enclosing path and
    fills in the file name.  ``origin``: the exception raised in code (a plugin's) that this
    error reports, if any, kept through :meth:`at` for its traceback.
    """

    origin: BaseException | None = None

    def __init__(self, message: str, path: tuple = (), file: str | None = None):
        self.message = message
        self.path = tuple(path)
        self.file = file
        super().__init__(str(self))

    def at(self, prefix: tuple = (), file: str | None = None) -> "ConfigError":
        """The same error seen from an enclosing YAML node (and file)."""
        out = ConfigError(self.message, tuple(prefix) + self.path, file or self.file)
        out.origin = self.origin
        return out

    def __str__(self) -> str:
        parts = [self.file] if self.file else []
        if self.path:
            parts.append(format_path(self.path))
        return ": ".join(parts + [self.message])


class FieldError(ValueError):
    """Raised by a class's cross-field check to name the key at fault (``key``): the config
    layer reports it at that key's YAML path instead of the class's."""

    def __init__(self, key: str, message: str):
        self.key = key
        super().__init__(message)


class ConfigErrors(ConfigError):
    """Several configuration errors found in one file (``errors``), reported together."""

    def __init__(self, errors: list[ConfigError]):
        self.errors = list(errors)
        first = self.errors[0]
        super().__init__(first.message, first.path, first.file)

    def at(self, prefix: tuple = (), file: str | None = None) -> "ConfigErrors":
        return ConfigErrors([e.at(prefix, file) for e in self.errors])

    def __str__(self) -> str:
        return "\n".join(str(e) for e in self.errors)
