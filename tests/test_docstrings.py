"""Every public function and method of the package says what it does (issue 14, part 5), and one that sends a
statement of `pgqrs._sql` names the engine object behind it (``pgqrs.trigger``, ``pgqrs.run_overview``).

The async modules are checked; the generated `pgqrs.sync` twins copy their docstrings.
"""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "pgqrs_py" / "pgqrs"
SQL_MODULES = {"_sql": "pgqrs._sql", "install_sql": "pgqrs._sql.install", "ops_sql": "pgqrs._sql.ops",
               "dash_sql": "pgqrs._sql.dashboard", "records_sql": "pgqrs._sql.records"}
Function = ast.FunctionDef | ast.AsyncFunctionDef


def public_functions(tree: ast.Module) -> list[tuple[str, Function]]:
    """(qualified name, node) of the module's public functions and the public methods of its public classes
    (properties and static methods included; dunders and nested functions are not public API)."""
    found: list[tuple[str, Function]] = []

    def visit(body: list[ast.stmt], prefix: str) -> None:
        for node in body:
            if isinstance(node, Function) and not node.name.startswith("_"):
                found.append((prefix + node.name, node))
            elif isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
                visit(node.body, f"{prefix}{node.name}.")

    visit(tree.body, "")
    return found


def package_modules() -> list[Path]:
    return [p for p in sorted(PACKAGE.rglob("*.py")) if "sync" not in p.relative_to(PACKAGE).parts]


def engine_objects(module: str, name: str) -> set[str]:
    """The pgqrs.* objects a statement of _sql names (functions, views, tables)."""
    text = getattr(importlib.import_module(SQL_MODULES[module]), name)
    return set(re.findall(r"\bpgqrs\.(\w+)", text)) if isinstance(text, str) else set()


def statements_used(node: Function) -> set[tuple[str, str]]:
    return {(n.value.id, n.attr) for n in ast.walk(node)
            if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id in SQL_MODULES}


def test_every_public_function_has_a_docstring() -> None:
    missing = [f"{path.relative_to(PACKAGE)}: {name}" for path in package_modules()
               for name, node in public_functions(ast.parse(path.read_text(encoding="utf-8")))
               if not (ast.get_docstring(node) or "").strip()]
    assert missing == [], "public functions without a docstring:\n" + "\n".join(missing)


def test_a_function_that_sends_a_statement_names_its_engine_object() -> None:
    unnamed = []
    for path in package_modules():
        for name, node in public_functions(ast.parse(path.read_text(encoding="utf-8"))):
            doc = ast.get_docstring(node) or ""
            for module, statement in sorted(statements_used(node)):
                objects = engine_objects(module, statement)
                if objects and not any(f"pgqrs.{o}" in doc for o in objects):
                    unnamed.append(f"{path.relative_to(PACKAGE)}: {name} sends {statement} "
                                   f"(name one of {', '.join(sorted('pgqrs.' + o for o in objects))})")
    assert unnamed == [], "\n".join(unnamed)


def test_the_scan_sees_the_package() -> None:
    """The checks above look at something: the package's public API is large, and it sends statements."""
    functions = [f for path in package_modules() for f in public_functions(ast.parse(path.read_text()))]
    assert len(functions) > 100
    assert sum(bool(statements_used(node)) for _name, node in functions) > 20


def test_the_checks_catch_a_bare_function() -> None:
    tree = ast.parse("class Store:\n    async def now(self):\n        return await self.call(_sql.NOW, ())\n"
                     "    def _private(self):\n        pass\n")
    (name, node), = public_functions(tree)
    assert name == "Store.now" and ast.get_docstring(node) is None
    assert statements_used(node) == {("_sql", "NOW")} and engine_objects("_sql", "NOW") == {"now"}
