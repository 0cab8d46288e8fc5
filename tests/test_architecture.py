"""The house rules, checked on the source with the standard library's ``ast``: no import
circle between trialsim's modules, no private name reached from another package, and the
registry at the bottom (it imports nothing of trialsim)."""
from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "trialsim"


def _modules() -> dict[str, Path]:
    out = {}
    for f in PKG.rglob("*.py"):
        rel = f.relative_to(PKG.parent).with_suffix("")
        parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
        out[".".join(parts)] = f
    return out


MODULES = _modules()


def _package_of(module: str) -> str:
    f = MODULES[module]
    return module if f.name == "__init__.py" else module.rpartition(".")[0]


def _imports(module: str) -> list[tuple[str, str | None, int]]:
    """(imported trialsim module, name imported from it or None, line) for every import in
    ``module``, wherever it stands (function bodies included), except under TYPE_CHECKING."""
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    skip = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip |= {id(n) for n in ast.walk(node)}
    pkg = _package_of(module)
    out = []
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            out += [(a.name, None, node.lineno) for a in node.names if a.name.startswith("trialsim")]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg.split(".")
                base = base[:len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target.startswith("trialsim"):
                continue
            for a in node.names:
                sub = f"{target}.{a.name}"
                if sub in MODULES:
                    out.append((sub, None, node.lineno))
                else:
                    out.append((target, a.name, node.lineno))
    return out


def _graph() -> dict[str, set[str]]:
    return {m: {t for t, _, _ in _imports(m) if t in MODULES and t != m} for m in MODULES}


def test_modules_were_found():
    assert {"trialsim.registry", "trialsim.config.study", "trialsim.pk.linear.engine",
            "trialsim.pk.ode.models", "trialsim.designs.crm"} <= set(MODULES)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def strongconnect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                strongconnect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            strongconnect(v)
    return cycles


def test_no_import_circle():
    cycles = _cycles(_graph())
    assert cycles == [], f"import circles: {cycles}"


def _private_root(target: str) -> tuple[str, str] | None:
    """(owning package, private module or subpackage) of the first private part of a dotted
    module path, or None when no part is private."""
    parts = target.split(".")
    for i, part in enumerate(parts):
        if part.startswith("_") and not part.startswith("__"):
            return ".".join(parts[:i]), ".".join(parts[:i + 1])
    return None


def _violations(pkg: str, target: str, name: str | None, target_pkg: str | None) -> list[str]:
    """Why importing ``name`` from ``target`` in a module of package ``pkg`` breaks the rule:
    a private module may be used by the package that owns it (and inside itself); a private
    name only by modules of the same package."""
    out = []
    root = _private_root(target)
    if root is not None:
        owner, private = root
        if not (pkg == owner or pkg == private or pkg.startswith(private + ".")):
            out.append(f"private module {private}")
    if name and name.startswith("_") and not name.startswith("__") and target_pkg != pkg:
        out.append(f"private name {name}")
    return out


def test_no_private_name_from_another_package():
    bad = []
    for m in MODULES:
        pkg = _package_of(m)
        for target, name, line in _imports(m):
            tpkg = _package_of(target) if target in MODULES else None
            for why in _violations(pkg, target, name, tpkg):
                bad.append(f"{MODULES[m].relative_to(PKG.parent)}:{line} imports {why}")
    assert bad == [], "\n".join(bad)


def test_registry_is_the_bottom_layer():
    assert [t for t, _, _ in _imports("trialsim.registry")] == []


def test_the_rule_can_fail():
    """The checks above see a private import or a circle when there is one."""
    assert _violations("trialsim.pk.linear", "trialsim.pk.linear._kernels.step", None,
                       "trialsim.pk.linear._kernels") == []
    assert _violations("trialsim.pk.linear._kernels", "trialsim.pk.linear._kernels.cell",
                       "scan_cell", "trialsim.pk.linear._kernels") == []
    assert _violations("trialsim.response", "trialsim.pk.ode._kernels", "RHS_SIG",
                       "trialsim.pk.ode") == ["private module trialsim.pk.ode._kernels"]
    assert _violations("trialsim.config", "trialsim.registry", "_REGISTRY",
                       "trialsim") == ["private name _REGISTRY"]
    assert "trialsim.pk.linear._kernels" in {t for t, _, _ in _imports("trialsim.pk.linear.engine")}
    graph = _graph()
    assert "trialsim.registry" in graph["trialsim.config.build"]
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
