"""The rules of the house, checked on the source: who may import whom, where SQL on the photo
tables lives, and that measuring code stays out of the product."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from tests.support.data import REPO

PRODUCT = ("facepass", "libs", "services")
SERVICES = ("ingest", "embedder", "search_api")
_PHOTO_TABLES = re.compile(
    r"\b(FROM|INTO|UPDATE|JOIN)\s+(photos|face_embeddings|sessions|erased_photos|erased_sessions)\b",
    re.IGNORECASE,
)


def _sources(*tops: str) -> list[Path]:
    return sorted(p for top in tops for p in (REPO / top).rglob("*.py"))


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _imports_any(path: Path, prefixes: tuple[str, ...]) -> list[str]:
    return sorted(n for n in _imports(path) if n.split(".")[0] in prefixes or n in prefixes)


def test_libs_never_import_services_the_cli_or_the_bench() -> None:
    offenders = {
        str(p.relative_to(REPO)): bad
        for p in _sources("libs")
        if (bad := _imports_any(p, ("services", "facepass", "bench")))
    }
    assert offenders == {}


@pytest.mark.parametrize("service", SERVICES)
def test_a_service_never_imports_another(service: str) -> None:
    others = tuple(f"services.{s}" for s in SERVICES if s != service)
    offenders = {
        str(p.relative_to(REPO)): bad
        for p in _sources(f"services/{service}")
        if (bad := [n for n in _imports(p) if n.startswith(others) or n.startswith("facepass")])
    }
    assert offenders == {}


def test_the_product_never_imports_the_bench() -> None:
    offenders = {
        str(p.relative_to(REPO)): bad
        for p in _sources(*PRODUCT)
        if (bad := _imports_any(p, ("bench",)))
    }
    assert offenders == {}


def test_sql_on_the_photo_tables_lives_in_libs_common_db() -> None:
    """queued, indexed, failed, erased: one home (libs/common/db/photos.py) for the lifecycle."""
    offenders = [
        f"{p.relative_to(REPO)}:{n}"
        for p in _sources("services")
        for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
        if _PHOTO_TABLES.search(line)
    ]
    assert offenders == []
    assert _PHOTO_TABLES.search("DELETE FROM face_embeddings WHERE photo_id = $1")  # it can see


def test_no_product_file_is_past_400_lines() -> None:
    long = {
        str(p.relative_to(REPO)): n
        for p in _sources(*PRODUCT, "bench")
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > 400
    }
    assert long == {}
