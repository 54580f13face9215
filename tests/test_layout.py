"""The layout holds: no import cycle in either package, no module over 500 lines without its
reason, one SN API client, and a command's class, help, handler and grammar rule in places of
one name.

The import graph is read from the source (every `import`, function-level ones included, since
hiding a cycle in a function still makes one), not from a running process."""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

import networkx as nx
import pytest

from swarmlearning.sn import routes
from swci.language.commands import COMMAND_CLASSES
from swci.registry import AREAS, all_specs

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {"swci": ROOT / "swci", "swarmlearning": ROOT / "runtime" / "swarmlearning"}
LINE_LIMIT = 500
ONE_PIECE = "One piece:"  # how a long module's docstring starts the sentence that says why


@dataclass(frozen=True)
class Module:
    name: str
    path: Path

    @property
    def is_package(self) -> bool:
        return self.path.name == "__init__.py"


def modules(packages: dict[str, Path] = PACKAGES) -> dict[str, Module]:
    """Every module of the packages (both of ours by default), by dotted name, from the files."""
    found = {}
    for top, root in packages.items():
        for path in sorted(root.rglob("*.py")):
            parts = [top, *path.relative_to(root).with_suffix("").parts]
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = Module(".".join(parts), path)
    return found


def imported(module: Module, known: dict[str, Module]) -> set[str]:
    """The modules of ours that `module` imports anywhere in its file. `from P import n` counts
    as importing P.n when that is a module (P, an enclosing package, is imported anyway)."""
    targets: set[str] = set()
    for node in ast.walk(ast.parse(module.path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.name.split(".")
                if not module.is_package:
                    base.pop()
                base = base[:len(base) - (node.level - 1)]
                source = ".".join([*base, *([node.module] if node.module else [])])
            else:
                source = node.module or ""
            for alias in node.names:
                child = f"{source}.{alias.name}"
                targets.add(child if child in known else source)
    return {name for name in targets if name in known and name != module.name}


def import_graph(packages: dict[str, Path] = PACKAGES) -> nx.DiGraph:
    known = modules(packages)
    graph = nx.DiGraph()
    graph.add_nodes_from(known)
    for module in known.values():
        graph.add_edges_from((module.name, target) for target in imported(module, known))
    return graph


def test_no_import_cycles():
    cycles = sorted(" -> ".join([*cycle, cycle[0]]) for cycle in nx.simple_cycles(import_graph()))
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


# docs/architecture.md's layers, from the bottom: a module imports only its own layer or lower
LAYERS = {
    "swarmlearning": [
        {"", "defaults", "states", "jsonbody", "logs", "lifecycle", "weights", "identity", "chain",
         "schemas"},
        {"merge", "ml", "nodes", "serve", "swci"},
        {"pyt", "tf", "sn"},
        {"sl"},
        {"swop"},
    ],
    "swci": [
        {"", "language", "grammar"},
        {"registry", "check", "client", "reference"},
        {"network"},
        {"interpreter"},
        {"runner", "shell", "web"},
        {"demo"},
        {"commands_cli"},
        {"cli", "__main__"},
    ],
}


def layer_of(name: str) -> tuple[str, int]:
    top, _, rest = name.partition(".")
    area = rest.split(".", 1)[0]
    for index, areas in enumerate(LAYERS[top]):
        if area in areas:
            return top, index
    raise AssertionError(f"{name}: area {area!r} is in no layer of docs/architecture.md")


def test_imports_keep_to_the_layers():
    climbing = []
    for source, target in import_graph().edges():
        (source_top, source_layer), (target_top, target_layer) = (layer_of(source),
                                                                  layer_of(target))
        if source_top == "swarmlearning" and target_top == "swci":
            climbing.append(f"{source} -> {target}: the runtime never imports the shell")
        elif source_top == target_top and target_layer > source_layer:
            climbing.append(f"{source} (layer {source_layer}) -> {target} (layer {target_layer})")
    assert not climbing, "\n".join(sorted(climbing))


def test_a_cycle_hidden_in_a_function_is_found(tmp_path: Path):
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("from pkg.sub import b\n")
    (package / "a.py").write_text("def f():\n    from .sub.b import g\n")
    (package / "sub" / "b.py").write_text("from ..a import f\ndef g():\n    pass\n")
    cycles = list(nx.simple_cycles(import_graph({"pkg": package})))
    assert sorted(map(sorted, cycles)) == [["pkg.a", "pkg.sub.b"]]


def test_the_graph_sees_imports():
    """The graph is not empty by mistake: known edges, function-level ones included."""
    graph = import_graph()
    assert graph.has_edge("swci.interpreter.interpreter", "swci.registry")
    assert graph.has_edge("swarmlearning.sl.rounds", "swarmlearning.sn.client")
    # imported inside a function only (choose_runtime)
    assert graph.has_edge("swarmlearning.swop.node", "swarmlearning.swop.runtimes.docker")
    assert graph.number_of_edges() > 200


def test_the_ml_side_imports_no_node_runtime():
    """What a training process imports needs only numpy and its framework (Python 3.8+)."""
    graph = import_graph()
    ml_side = ["swarmlearning.ml", "swarmlearning.pyt", "swarmlearning.tf",
               "swarmlearning.weights"]
    allowed = re.compile(r"^swarmlearning(\.(ml|pyt|tf|hf_transformers|weights|defaults|jsonbody)"
                         r"(\..*)?)?$")
    for start in ml_side:
        if start in graph:
            reached = nx.descendants(graph, start) | {start}
            assert all(allowed.match(name) for name in reached), sorted(reached)


def test_long_modules_say_why():
    """Both packages and the benchmarks (tests are not held to it)."""
    long = []
    for path in [*(module.path for module in modules().values()),
                 *sorted((ROOT / "bench").glob("*.py"))]:
        text = path.read_text(encoding="utf-8")
        if text.count("\n") > LINE_LIMIT and ONE_PIECE not in (
                ast.get_docstring(ast.parse(text)) or ""):
            long.append(f"{path.relative_to(ROOT)}: {text.count(chr(10))} lines")
    assert not long, (f"modules over {LINE_LIMIT} lines whose docstring does not say why they "
                      f"are one piece ('{ONE_PIECE} ...'):\n" + "\n".join(long))


def _sn_path_literals(path: Path) -> list[str]:
    """String literals (and f-string heads) in a file that begin with an SN API path."""
    prefixes = tuple(sorted({"/".join(route.path.split("/")[:3])
                             for route in vars(routes).values()
                             if isinstance(route, routes.Route)}))
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        text = None
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            text = node.value
        elif isinstance(node, ast.JoinedStr) and node.values and isinstance(
                node.values[0], ast.Constant):
            text = str(node.values[0].value)
        if text is not None and text.startswith(prefixes):
            found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {text!r}")
    return found


def test_sn_api_paths_are_spelled_once():
    """Only the route table spells the SN API's paths; the server and the client take them
    from it."""
    spelled = [hit for module in modules().values()
               if module.name != "swarmlearning.sn.routes"
               for hit in _sn_path_literals(module.path)]
    assert not spelled, "SN API paths outside swarmlearning/sn/routes.py:\n" + "\n".join(spelled)


def test_route_urls_quote_every_parameter():
    assert routes.TASKRUNNER_PEER.url(name="a/b c", peer=3) == "/v1/taskrunners/a%2Fb%20c/peers/3"
    with pytest.raises(TypeError, match="takes"):
        routes.TASK.url(task="x")


def test_handlers_sit_in_the_area_of_their_command():
    """A command's class lives in swci/language/commands/<area>.py; its handler and help in
    swci/interpreter/handlers/<area>.py."""
    wrong = [f"{spec.name}: class in {spec.area}, handler in {spec.handler.__module__}"
             for spec in all_specs()
             if spec.handler.__module__ != f"swci.interpreter.handlers.{spec.area}"]
    assert not wrong, "\n".join(wrong)
    assert {spec.area for spec in all_specs()} == set(AREAS)


def test_grammar_sections_follow_the_areas():
    """Each command rule is defined in the grammar section marked with its area."""
    grammar = (ROOT / "grammar" / "swci.lark").read_text(encoding="utf-8")
    area, where = None, {}
    for line in grammar.splitlines():
        marker = re.match(r"^// area: (\w+)$", line)
        if marker:
            area = marker[1]
        elif line.startswith("// ----"):
            area = None
        rule = re.match(r"^\??(\w+):", line)
        if rule and area is not None:
            where[rule[1]] = area
    areas = {rule: cls.__module__.rsplit(".", 1)[-1] for rule, cls in COMMAND_CLASSES.items()}
    misplaced = {rule: (where.get(rule), area) for rule, area in areas.items()
                 if where.get(rule) != area}
    assert not misplaced, f"rule: (grammar section, command area): {misplaced}"
