"""The package's layers, read from its imports (every `import`, at module level or inside a function):
no module reaches itself through others, and the inference side (api.py, codec/, app/ and the
command's use verbs) never reaches motionbits.training, and no module imports one on a floor above
its own (FLOORS, as docs/architecture.md draws them)."""
from __future__ import annotations

import ast
from pathlib import Path

import motionbits

PACKAGE = Path(motionbits.__file__).parent
# The command's verbs that use a trained model; `train`, `sweep`, `demo`, `bench` and `data` train or build.
USE_VERBS = ("transfer", "reconstruct", "encode", "decode", "generate", "score", "app")
# docs/architecture.md's floors, top to bottom: a module (or a folder's modules) by its name without
# "motionbits."; "" is the package itself. A module may import its own floor and those below.
FLOORS = (
    ("", "cli"),
    ("sweep", "demo"),
    ("evaluation",),
    ("bench",),
    ("training",),
    ("reliance",),
    ("app",),
    ("codec",),
    ("api",),
    ("checkpoints",),
    ("data",),
    ("models",),
    ("diffusion", "visualize"),
    ("config", "prior_config", "runtime", "run_lock", "face_models", "lip_points", "frame_rate", "bounded_yaml",
     "atomic_files", "json_text", "errors", "assets"),
)


def module_name(path: Path) -> str:
    parts = ["motionbits", *path.relative_to(PACKAGE).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def imported(node: ast.AST, importer: str) -> set[str]:
    """The package's modules that the import statements under `node` name."""
    found = set()
    for n in ast.walk(node):
        if isinstance(n, ast.Import):
            names = [a.name for a in n.names]
        elif isinstance(n, ast.ImportFrom):
            assert not n.level, f"{importer}: a relative import (the package imports by absolute names)"
            names = [f"{n.module}.{a.name}" for a in n.names] + [n.module]
        else:
            continue
        for name in names:
            while name and name not in MODULES:          # `from motionbits.data import clips` names a module;
                name = name.rpartition(".")[0]           # `from motionbits.api import MotionBits` its module
            if name:
                found.add(name)
    return found - {importer}


def graph() -> dict[str, set[str]]:
    return {name: imported(ast.parse(path.read_text()), name) for name, path in MODULES.items()}


def reaches(edges: dict[str, set[str]], start: set[str]) -> dict[str, str]:
    """Every module reachable from `start`, each with the module that imports it on the way."""
    seen, todo = {}, list(start)
    while todo:
        here = todo.pop()
        for there in edges.get(here, ()):
            if there not in seen and there not in start:
                seen[there] = here
                todo.append(there)
    return seen


def path_to(seen: dict[str, str], start: set[str], goal: str) -> str:
    chain = [goal]
    while chain[-1] not in start:
        chain.append(seen[chain[-1]])
    return " -> ".join(reversed(chain))


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan)."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                out.append(sorted(group))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def training_reached_from(edges: dict[str, set[str]], start: set[str]) -> list[str]:
    seen = reaches(edges, start)
    return [path_to(seen, start, m) for m in sorted(seen) if m == "motionbits.training" or
            m.startswith("motionbits.training.")]


def floor_of(module: str) -> int:
    name = module.removeprefix("motionbits").removeprefix(".")
    for floor, names in enumerate(FLOORS):
        if any(name == n or n and name.startswith(n + ".") for n in names):
            return floor
    raise AssertionError(f"{module} is on no floor: add it to FLOORS and docs/architecture.md")


def imports_up(edges: dict[str, set[str]]) -> list[str]:
    return [f"{a} -> {b}" for a in sorted(edges) for b in sorted(edges[a]) if floor_of(b) < floor_of(a)]


def test_no_import_cycles():
    assert cycles(graph()) == []


def test_inference_modules_never_reach_training():
    edges = graph()
    inference = {m for m in MODULES if m == "motionbits.api" or m.startswith(("motionbits.codec", "motionbits.app"))}
    assert inference and training_reached_from(edges, inference) == []


def test_no_module_imports_a_floor_above_its_own():
    assert imports_up(graph()) == []


def test_use_verbs_never_reach_training():
    """Each verb's own imports (inside its cmd_ function), those of the command's helpers (the
    functions that are no verb, such as the one opening a checkpoint) and the module-level ones."""
    edges = graph()
    tree = ast.parse(MODULES["motionbits.cli"].read_text())
    functions = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
    shared = set().union(*(imported(n, "motionbits.cli") for n in tree.body
                           if isinstance(n, (ast.Import, ast.ImportFrom)) or
                           isinstance(n, ast.FunctionDef) and not n.name.startswith("cmd_")))
    for verb in USE_VERBS:
        edges["motionbits.cli:" + verb] = shared | imported(functions["cmd_" + verb], "motionbits.cli")
        assert training_reached_from(edges, {"motionbits.cli:" + verb}) == [], verb


def test_no_private_name_is_imported_from_another_module():
    taken = [f"{name}: {n.module}.{a.name}" for name, path in MODULES.items()
             for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.ImportFrom)
             and (n.module or "").startswith("motionbits") for a in n.names if a.name.startswith("_")]
    assert taken == []


def test_the_walk_sees_a_cycle_and_a_training_import():
    """The checks above can fail: a made-up import back up, and one into training."""
    edges = graph()
    edges["motionbits.errors"] = edges["motionbits.errors"] | {"motionbits.api"}
    assert any("motionbits.errors" in group for group in cycles(edges))
    edges = graph()
    edges["motionbits.codec.format"] = edges["motionbits.codec.format"] | {"motionbits.training.loop"}
    assert "motionbits.codec.format -> motionbits.training.loop" in training_reached_from(edges, {"motionbits.codec.format"})


def test_the_floors_see_an_import_up():
    """training/ may not import evaluation/ (evaluation trains the Sprites judge with training's loop)."""
    edges = graph()
    edges["motionbits.training.bcd"] = edges["motionbits.training.bcd"] | {"motionbits.evaluation.video"}
    assert imports_up(edges) == ["motionbits.training.bcd -> motionbits.evaluation.video"]
