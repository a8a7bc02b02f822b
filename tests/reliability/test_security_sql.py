"""SQL is built only with bind parameters: a scan of the code, and a check that it catches
interpolation."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.support.data import REPO

# --- SQL is parameterised -------------------------------------------------------------------

SQL_METHODS = {"execute", "executemany", "fetch", "fetchrow", "fetchval", "cursor", "prepare"}

#: Interpolations into SQL text that are known to hold constants only, and why.
ALLOWED_INTERPOLATIONS = {
    # `_COLUMNS` is a module constant (a column list) and `lock` is "" or " FOR UPDATE".
    ("libs/common/db/photos.py", "get_photo"),
}


def _interpolated(node: ast.AST, assigned: dict[str, ast.AST]) -> bool:
    """Whether a SQL argument is built by f-string, % or str.format (resolving local names)."""
    if isinstance(node, ast.Name) and node.id in assigned:
        return _interpolated(assigned[node.id], {})
    if isinstance(node, ast.JoinedStr):
        return any(isinstance(v, ast.FormattedValue) for v in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Mod, ast.Add)):
        return not (_is_literal(node.left) and _is_literal(node.right))
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        if node.func.attr == "format":
            # psycopg's sql.SQL(...).format(...) quotes identifiers and literals: allowed.
            base = node.func.value
            return not (
                isinstance(base, ast.Call)
                and isinstance(base.func, ast.Attribute)
                and base.func.attr == "SQL"
            )
        if node.func.attr == "join":
            return True
    return False


def _is_literal(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) or (
        isinstance(node, ast.BinOp) and _is_literal(node.left) and _is_literal(node.right)
    )


def _sql_interpolations() -> set[tuple[str, str]]:
    found = set()
    for folder in ("libs", "services"):
        for path in sorted((REPO / folder).rglob("*.py")):
            tree = ast.parse(path.read_text())
            for function in ast.walk(tree):
                if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    continue
                assigned = {
                    t.id: n.value
                    for n in ast.walk(function)
                    if isinstance(n, ast.Assign)
                    for t in n.targets
                    if isinstance(t, ast.Name)
                }
                for call in ast.walk(function):
                    if (
                        isinstance(call, ast.Call)
                        and isinstance(call.func, ast.Attribute)
                        and call.func.attr in SQL_METHODS
                        and call.args
                        and _interpolated(call.args[0], assigned)
                    ):
                        found.add((str(path.relative_to(REPO)), function.name))
    return found


def test_sql_is_built_only_with_bind_parameters() -> None:
    found = _sql_interpolations()
    assert found - ALLOWED_INTERPOLATIONS == set(), "SQL text built by interpolation"
    assert found >= ALLOWED_INTERPOLATIONS, "a stale allow-list entry: remove it"


def test_the_sql_scan_catches_interpolation(tmp_path: Path) -> None:
    """The scanner itself: an f-string, % and .format passed to execute are all caught."""
    snippets = [
        'async def f(conn, x):\n    await conn.execute(f"DELETE FROM t WHERE id = {x}")\n',
        'async def f(conn, x):\n    q = "SELECT %s" % x\n    await conn.fetch(q)\n',
        'async def f(conn, x):\n    await conn.fetchval("SELECT {}".format(x))\n',
    ]
    for source in snippets:
        tree = ast.parse(source)
        function = tree.body[0]
        assigned = {
            t.id: n.value
            for n in ast.walk(function)
            if isinstance(n, ast.Assign)
            for t in n.targets
            if isinstance(t, ast.Name)
        }
        calls = [c for c in ast.walk(function) if isinstance(c, ast.Call) and c.args]
        assert any(_interpolated(c.args[0], assigned) for c in calls), source
    safe = 'async def f(conn, x):\n    await conn.execute("DELETE FROM t WHERE id = $1", x)\n'
    calls = [c for c in ast.walk(ast.parse(safe)) if isinstance(c, ast.Call) and c.args]
    assert not any(_interpolated(c.args[0], {}) for c in calls)
