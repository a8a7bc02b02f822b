"""Multipart forms carry evaluated annotations: Litestar resolves a form's type hints on every
request, and string annotations (`from __future__ import annotations`) made that a compile and
an eval of each one per request, a large share of a cached search."""

from __future__ import annotations

import pytest

from services.ingest.schemas import IndexForm
from services.search_api.schemas import SearchForm, SubscribeForm


@pytest.mark.parametrize("form", [SearchForm, SubscribeForm, IndexForm])
def test_form_annotations_are_types_not_strings(form: type) -> None:
    annotations = form.__annotations__
    assert annotations
    assert not [name for name, hint in annotations.items() if isinstance(hint, str)]
