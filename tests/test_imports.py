"""The import structure: no cycles, a plain library, and stages that only import downwards.

Imports are read with ``ast`` from the source of every module under
``provenance/``, ``provenance_cli/`` and ``flows/``: top-level imports and
those inside functions alike (a function-level import is still a
dependency; it only runs later).

The layer order, lowest first (a module may import its own layer and any
lower one, never a higher one)::

    errors
    < config, kernels, digest, stage_report
    < schemas, spill, ingest
    < tables                 (needs only schemas; trace.stage assembles the output tables through it)
    < prepare.*
    < link.*
    < trace.*
    < chain
    < store.*, preflight     (preflight checks a store's output link: store.layout)
    < query
    < report.*
    < provenance (__init__)
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("provenance", "provenance_cli", "flows")
#: What the library must never import: the runners and the console belong to provenance_cli and flows.
NOT_IN_LIBRARY = {"prefect", "prefect_dask", "dask", "distributed", "typer", "rich", "click", "provenance_cli", "flows"}

LAYERS: list[list[str]] = [
    ["provenance.errors"],
    ["provenance.config", "provenance.kernels", "provenance.digest", "provenance.stage_report"],
    ["provenance.schemas", "provenance.spill", "provenance.ingest"],
    ["provenance.tables"],
    ["provenance.prepare"],
    ["provenance.link"],
    ["provenance.trace", "provenance.titles"],
    ["provenance.outputs"],
    ["provenance.chain"],
    ["provenance.store", "provenance.preflight"],
    ["provenance.query"],
    ["provenance.report"],
    ["provenance"],
]


def module_files() -> dict[str, Path]:
    """Dotted module name -> source file, for every module of the three packages."""
    out: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = path
    return out


def imports_of(source: str, module: str, is_package: bool, known: set[str]) -> set[str]:
    """Every module ``module``'s source imports, anywhere in it (functions too), as dotted names.

    ``from a.b import c`` is an import of ``a.b.c`` when that is a module of
    ours, else of ``a.b``; relative imports are resolved against ``module``.
    """
    found: set[str] = set()
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                found.add(candidate if candidate in known else base)
    return found


def import_graph() -> dict[str, set[str]]:
    files = module_files()
    known = set(files)
    return {
        name: imports_of(path.read_text(encoding="utf-8"), name, path.name == "__init__.py", known)
        for name, path in files.items()
    }


def internal(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """The graph restricted to our own modules."""
    return {name: {m for m in deps if m in graph and m != name} for name, deps in graph.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (or a module importing itself), sorted."""
    graph = {name: {m for m in deps if m in graph} for name, deps in graph.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1 or v in graph[v]:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(out)


def layer_of(module: str) -> int | None:
    """The layer of a library module: that of the longest listed name it is, or lies under."""
    best: tuple[int, int] | None = None
    for rank, names in enumerate(LAYERS):
        for name in names:
            if (module == name or module.startswith(name + ".")) and (best is None or len(name) > best[0]):
                best = (len(name), rank)
    return best[1] if best else None


def layer_violations(graph: dict[str, set[str]]) -> list[str]:
    out = []
    for module, deps in sorted(internal(graph).items()):
        if not module.startswith("provenance") or module.startswith("provenance_cli"):
            continue
        for dep in sorted(deps):
            if dep.startswith("provenance") and not dep.startswith("provenance_cli") and layer_of(dep) > layer_of(module):
                out.append(f"{module} (layer {layer_of(module)}) imports higher {dep} (layer {layer_of(dep)})")
    return out


def forbidden_imports(graph: dict[str, set[str]]) -> list[str]:
    out = []
    for module, deps in sorted(graph.items()):
        tops = {dep.split(".")[0] for dep in deps}
        if module.split(".")[0] == "provenance":
            out += [f"{module} imports {top}" for top in sorted(tops & NOT_IN_LIBRARY)]
        if module.split(".")[0] == "flows" and "provenance_cli" in tops:
            out.append(f"{module} imports provenance_cli")
    return out


# ---------------------------------------------------------------------------- the real code


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return import_graph()


def test_the_walk_sees_every_package_and_the_imports_it_should(graph) -> None:
    # Sanity of the walk itself: known edges, including function-level ones, are found.
    assert {"provenance.chain", "provenance.store.run", "provenance_cli.runs", "flows.provenance_flow"} <= set(graph)
    assert "provenance.trace.stage" in graph["provenance.chain"]
    assert "provenance.outputs" in graph["provenance.chain"] and "provenance.tables" in graph["provenance.chain"]
    assert "provenance.chain" in graph["provenance_cli.runs"]  # imported inside run_local
    assert "flows.provenance_flow" in graph["provenance_cli.runs"]  # imported inside run
    assert "prefect" in {d.split(".")[0] for d in graph["flows.provenance_flow"]}


def test_every_library_module_has_a_layer(graph) -> None:
    missing = [m for m in graph if m.split(".")[0] == "provenance" and layer_of(m) is None]
    assert missing == []


def test_no_import_cycles(graph) -> None:
    assert cycles(internal(graph)) == []


def test_the_library_imports_no_runner_console_or_cli(graph) -> None:
    assert forbidden_imports(graph) == []


def test_no_stage_imports_a_later_one(graph) -> None:
    assert layer_violations(graph) == []


# ---------------------------------------------------------------------------- the checks can fail


def test_a_prepare_module_importing_link_is_caught(graph) -> None:
    source = "import numpy as np\n\ndef tokenize(texts):\n    from provenance.link import lsh\n    return lsh\n"
    deps = imports_of(source, "provenance.prepare.normalize", False, set(graph))
    assert "provenance.link.lsh" in deps  # a function-level import is an import
    broken = {**graph, "provenance.prepare.normalize": graph["provenance.prepare.normalize"] | deps}
    assert layer_violations(broken) == ["provenance.prepare.normalize (layer 4) imports higher provenance.link.lsh (layer 5)"]
    broken = {**graph, "provenance.prepare.normalize": graph["provenance.prepare.normalize"] | {"provenance.link"}}
    assert layer_violations(broken) == ["provenance.prepare.normalize (layer 4) imports higher provenance.link (layer 5)"]


def test_a_cycle_is_caught(graph) -> None:
    broken = {**graph, "provenance.config": graph["provenance.config"] | {"provenance.chain"}}
    found = cycles(internal(broken))
    assert len(found) == 1 and {"provenance.config", "provenance.chain"} <= set(found[0])
    assert cycles({"a": {"a"}, "b": set()}) == [["a"]]


def test_prefect_typer_rich_or_the_cli_in_the_library_are_caught(graph) -> None:
    for dep in ("prefect", "typer.main", "rich.console", "provenance_cli.console", "flows.cache"):
        broken = {**graph, "provenance.chain": graph["provenance.chain"] | {dep}}
        assert forbidden_imports(broken) == [f"provenance.chain imports {dep.split('.')[0]}"]
    broken = {**graph, "flows.cache": graph["flows.cache"] | {"provenance_cli.runs"}}
    assert forbidden_imports(broken) == ["flows.cache imports provenance_cli"]


def test_relative_and_from_package_imports_resolve_to_modules() -> None:
    known = {"provenance", "provenance.prepare", "provenance.prepare.words", "provenance.prepare.normalize", "provenance.link"}
    source = "from . import normalize\nfrom .words import doc_words\nfrom .. import link\nfrom provenance.prepare import words, Thing\n"
    deps = imports_of(source, "provenance.prepare.shingle", False, known)
    assert deps == {"provenance.prepare.normalize", "provenance.prepare.words", "provenance.link", "provenance.prepare"}
    assert imports_of("from . import words\n", "provenance.prepare", True, known) == {"provenance.prepare.words"}
