"""The module map of overparam/README.md is true: every module is listed, and every import goes down a layer."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "overparam"


def _layers() -> dict[str, int]:
    rows = re.findall(r"^\| `([a-z_]+)` \| (\d+) \|", (PACKAGE / "README.md").read_text(), flags=re.M)
    return {name: int(layer) for name, layer in rows}


def _modules() -> dict[str, Path]:
    """Map entry -> file: top-level modules by name, every file of cli/ under the entry 'cli'."""
    found = {p.stem: p for p in PACKAGE.glob("*.py")}
    found.update({f"cli.{p.stem}": p for p in (PACKAGE / "cli").glob("*.py")})
    return found


def _entry(module: str) -> str:
    return "cli" if module.startswith("cli.") else module


def _imports(name: str, path: Path) -> set[str]:
    """Modules of the package that ``name`` imports anywhere in its file (lazy imports included)."""
    package = ["cli"] if name.startswith("cli.") else []
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level == 0:
                if node.module and node.module.startswith("overparam."):
                    out.add(node.module.removeprefix("overparam."))
                elif node.module == "overparam":
                    out.update(a.name for a in node.names)
                continue
            base = package[: len(package) - (node.level - 1)] if node.level > 1 else package
            if node.module:
                out.add(".".join([*base, node.module]))
            else:
                out.update(".".join([*base, a.name]) for a in node.names)
        elif isinstance(node, ast.Import):
            out.update(a.name.removeprefix("overparam.") for a in node.names if a.name.startswith("overparam."))
    known = set(_modules())
    return {m for m in out if m in known or _entry(m) in known or m == "cli"}


def test_every_module_is_on_the_map_and_the_map_lists_no_ghosts():
    layers = _layers()
    entries = {_entry(m) for m in _modules()}
    assert entries == set(layers), (f"not on the map: {sorted(entries - set(layers))}; "
                                    f"on the map but missing: {sorted(set(layers) - entries)}")


def test_every_import_goes_down_a_layer_and_only_main_imports_the_command_line():
    layers = _layers()
    wrong = []
    for name, path in sorted(_modules().items()):
        own = _entry(name)
        for imported in sorted(_imports(name, path)):
            target = _entry(imported)
            if own == "cli" and target == "cli":
                continue  # inside the command-line package
            if target == "cli" and own != "__main__":
                wrong.append(f"{name} imports the command line ({imported})")
            elif target != "cli" and layers[target] >= layers[own]:
                wrong.append(f"{name} (layer {layers[own]}) imports {imported} (layer {layers[target]})")
    assert not wrong, "imports against the module map:\n" + "\n".join(wrong)


def test_the_map_test_sees_imports():
    """The checker itself: it finds relative, lazy and package-relative imports."""
    cli_ethanol = _imports("cli.ethanol", PACKAGE / "cli" / "ethanol.py")
    assert {"ethanol", "sweep", "cli.args", "cli.progress"} <= cli_ethanol
    assert "data" in _imports("files", PACKAGE / "files.py")  # imported inside a function


def test_all_lists_exactly_what_the_package_imports():
    import overparam

    tree = ast.parse((PACKAGE / "__init__.py").read_text())
    imported = {a.asname or a.name for node in tree.body if isinstance(node, ast.ImportFrom) and node.level == 1
                for a in node.names}
    assert set(overparam.__all__) == imported
    assert all(hasattr(overparam, name) for name in overparam.__all__)
    assert len(overparam.__all__) == len(set(overparam.__all__))


def test_library_functions_draw_but_never_show():
    """Plotting helpers return figures; showing them is the notebook's (or the widget's) business."""
    shown = []
    for name, path in _modules().items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "show":
                shown.append(f"{name}:{node.lineno}")
    assert not shown, f"library code calls .show(): {shown}"


def test_docstrings_cite_chapter_labels_that_exist_with_their_numbers():
    """A docstring's ``ch-…`` label is defined by a chapter, and "Chapter N" beside it is that chapter's number."""
    legend = dict(re.findall(r"^\| (\d) \| `(ch-[a-z-]+)` \|", (PACKAGE / "README.md").read_text(), flags=re.M))
    book = PACKAGE.parent
    defined = {}
    for number, path in enumerate(sorted((book / "chapters").glob("0*.ipynb")), start=1):
        found = re.findall(r"\((ch-[a-z-]+)\)=", path.read_text())
        assert found, f"{path.name} defines no chapter label"
        defined[str(number)] = found[0]
    assert legend == defined, "the label table of overparam/README.md differs from the chapters"
    cited = 0
    for path in sorted(PACKAGE.rglob("*.py")):
        text = path.read_text()
        for label in re.findall(r"``(ch-[a-z-]+)``", text):
            assert label in defined.values(), f"{path.name} cites {label}, which no chapter defines"
            cited += 1
        for number, label in re.findall(r"Chapter (\d)(?:,| \() ?``(ch-[a-z-]+)``", text):
            assert defined[number] == label, f"{path.name}: Chapter {number} is {defined[number]}, not {label}"
    assert cited > 50, "the docstrings cite almost no label: the pattern is wrong"


def test_every_annotation_of_the_package_resolves():
    """typing.get_type_hints on op.training.divergence_limit raised NameError: ``Any`` was used but not imported."""
    import importlib
    import inspect
    import pkgutil
    import typing

    import overparam

    checked, failures = 0, []
    for info in pkgutil.walk_packages(overparam.__path__, "overparam."):
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            if getattr(obj, "__module__", None) != module.__name__ or not (inspect.isfunction(obj) or inspect.isclass(obj)):
                continue
            methods = [v for v in vars(obj).values() if inspect.isfunction(v)] if inspect.isclass(obj) else []
            for target in [obj, *methods]:
                checked += 1
                try:
                    typing.get_type_hints(target)
                except Exception as error:  # noqa: BLE001 - every failure is reported, by name
                    failures.append(f"{info.name}.{target.__qualname__}: {error!r}")
    assert checked > 300 and not failures, failures


def _package_modules() -> list[str]:
    import pkgutil

    import overparam

    return sorted(info.name for info in pkgutil.walk_packages(overparam.__path__, "overparam.")
                  if info.name not in ("overparam.__main__", "overparam.cli"))



@pytest.mark.parametrize("name", _package_modules())
def test_every_public_function_and_class_is_in_its_modules_all(name):
    """A public name outside __all__ (checks.run_check, linear.problem_tensors, ...) is neither API nor private."""
    import importlib
    import inspect

    module = importlib.import_module(name)
    public = {n for n, obj in vars(module).items() if not n.startswith("_") and (inspect.isfunction(obj) or inspect.isclass(obj))
              and obj.__module__ == name}
    assert public <= set(getattr(module, "__all__", ())), sorted(public - set(getattr(module, "__all__", ())))
