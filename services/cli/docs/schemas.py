"""The JSON Schemas of the envelope and of every event's `data`, as both documents show them."""

from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from shared.events.catalogue import CATALOGUE
from shared.events.envelope import CloudEvent

SCHEMA_REF = "#/components/schemas/{model}"


def event_schemas() -> dict[str, Any]:
    models: list[type[BaseModel]] = [CloudEvent, *CATALOGUE.values()]
    _, definitions = models_json_schema(
        [(model, "serialization") for model in models], ref_template=SCHEMA_REF
    )
    schemas: dict[str, Any] = definitions["$defs"]
    return dict(sorted(schemas.items()))


def model_names() -> set[str]:
    return {model.__name__ for model in CATALOGUE.values()}
