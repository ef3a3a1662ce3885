"""The shape of the code: no import circles, registries that refuse what would break a front end,
the adapter protocol as the one door, one home for what a user asks for."""

import ast
import dataclasses
from pathlib import Path
from typing import ClassVar

import pytest

import textlens

SRC = Path(textlens.__file__).resolve().parent


def _modules() -> dict[str, Path]:
    found = {}
    for path in SRC.rglob("*.py"):
        parts = ("textlens", *path.relative_to(SRC).with_suffix("").parts)
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def _imports(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Every textlens module each module imports, at the top or inside a function."""

    def resolve(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {m: set() for m in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text())):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*up, *([node.module] if node.module else [])])
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base
                           for a in node.names]  # fmt: skip
            for target in targets:
                found = resolve(target) if target.startswith("textlens") else None
                if found and found != name:
                    graph[name].add(found)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_circles_counting_imports_inside_functions():
    graph = _imports(_modules())
    assert "textlens.request" in graph and graph["textlens.cli"]  # the graph was read
    assert _cycles(graph) == []


def test_the_detector_finds_a_circle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_render_never_reads_the_method_registry():
    graph = _imports(_modules())
    for name, targets in graph.items():
        if name.startswith("textlens.render"):
            assert not any(t.startswith("textlens.methods") for t in targets), name


def _method(name: str, **fields):
    from textlens.methods.base import Scores

    namespace = {
        "__annotations__": {k: int for k in fields},
        **fields,
        "name": name,
        "signed": True,
        "layered": False,
        "attribute": lambda self, model, batch, target: Scores(model.embed(batch).sum(-1)),
        "memory_bytes": lambda self, model, batch: 1,
    }
    namespace["__annotations__"].update(
        {"name": ClassVar[str], "signed": ClassVar[bool], "layered": ClassVar[bool]}
    )
    return dataclasses.dataclass(frozen=True)(type("Made", (), namespace))


@pytest.mark.parametrize(("name", "fields", "message"), [
    ("random", {}, "reserved name"),
    ("all", {}, "reserved name"),
    ("pooled-gradient", {"pooling": 1}, "setting called 'pooling'"),
    ("targeted-gradient", {"target": 1}, "setting called 'target'"),
])  # fmt: skip
def test_the_registry_refuses_names_a_front_end_uses(name, fields, message):
    from textlens.methods import METHODS, register

    with pytest.raises(ValueError, match=message):
        register(_method(name, **fields))
    assert name not in METHODS


def test_every_command_option_is_reserved_for_the_front_ends():
    """A method setting can never be taken by a command's own option of the same name."""
    from textlens.cli import main
    from textlens.methods import METHODS
    from textlens.methods.settings import RESERVED

    settings = {f.name for cls in METHODS.values() for f in dataclasses.fields(cls)}
    for command in main.commands.values():
        for param in command.params:
            if param.name in settings:  # one of the settings' own flags
                continue
            assert param.name in RESERVED, f"{command.name}: {param.name}"


def test_every_request_field_is_reserved():
    from textlens.methods.settings import RESERVED
    from textlens.request import Request

    # layers is shared on purpose: it is every layered method's own setting
    assert {f.name for f in dataclasses.fields(Request)} - {"layers"} <= RESERVED


def test_any_object_that_satisfies_the_protocol_is_taken(tiny_bert):
    """The protocol is the door: an adapter that is no subclass of textlens's own is explained."""
    from textlens import explain
    from textlens.adapters import ModelAdapter
    from textlens.adapters.function import FunctionAdapter
    from textlens.adapters.loading import load_model

    class Wrapped:  # delegates every member to the tiny BERT
        def __init__(self, inner):
            self._inner = inner

        def __getattr__(self, name):
            return getattr(self._inner, name)

    for name in [n for n in dir(ModelAdapter) if not n.startswith("_")]:
        assert hasattr(tiny_bert, name), name
        assert hasattr(FunctionAdapter, name) or name in vars(FunctionAdapter), name
    wrapped = Wrapped(tiny_bert)
    assert isinstance(wrapped, ModelAdapter)
    assert load_model(wrapped) is wrapped
    assert explain("a good film", wrapped, "gradient").scores.shape[0] > 0
    with pytest.raises(textlens.TextlensError, match="cannot load a model from object"):
        load_model(object())
