"""The published contracts: JSON Schemas of the events and the AsyncAPI document.

Both are generated from the code (the pydantic event models; the FastStream broker with the
ingest publisher and the embedder's subscriber and publishers declared) and committed under
`schemas/`; tests fail when the committed files drift from what the code generates.
"""

from __future__ import annotations

import json
from typing import Any

from faststream.specification import AsyncAPI

from libs.common.events import EVENT_SCHEMAS
from libs.common.runtime import Need, Runtime, create_broker
from libs.common.settings import Settings
from services.embedder.subscriber import register_embedder
from services.ingest.publishing import declare_uploaded_publisher

ASYNCAPI_FILE = "asyncapi.json"


def event_schemas() -> dict[str, dict[str, Any]]:
    """File name → JSON Schema of each event model."""
    out = {}
    for name, model in EVENT_SCHEMAS.items():
        schema = model.model_json_schema(mode="serialization")
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        schema["$id"] = f"urn:facepass:schemas:{name.removesuffix('.schema.json')}"
        out[name] = schema
    return out


async def asyncapi_document(settings: Settings) -> dict[str, Any]:
    """The AsyncAPI 3.0 document FastStream generates for FacePass' topics."""
    broker = create_broker(settings)
    runtime = Runtime(settings=settings, needs=frozenset({Need.KAFKA}), broker=broker)
    try:
        await declare_uploaded_publisher(runtime)
        await register_embedder(runtime)
        spec = AsyncAPI(
            broker,
            title=f"{settings.app.app_name} events",
            version=settings.app.app_version,
            description="Kafka topics of the FacePass pipeline (see docs/events.md).",
        )
        document: dict[str, Any] = json.loads(spec.to_specification().to_json())
        return document
    finally:
        runtime.executor.shutdown(wait=False)


def dumps(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


async def contract_files(settings: Settings) -> dict[str, str]:
    """File name under schemas/ → its generated text."""
    files = {name: dumps(schema) for name, schema in event_schemas().items()}
    files[ASYNCAPI_FILE] = dumps(await asyncapi_document(settings))
    return files
