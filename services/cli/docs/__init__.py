"""The reference documents in docs/, generated from the code (`make docs`).

- `docs/openapi/<service>.json`: each service's OpenAPI (`openapi`);
- `docs/asyncapi.json`: AsyncAPI 3.0 of the events (`asyncapi`);
- `docs/README.md`: the index a person reads (`readme`).

Nothing here knows an event: producer, subject, "when" and version are declared by the
catalogue's models (`shared.events.catalogue`), queues by the topology. `python -m
services.cli.docs check` exits 1 when the committed documents differ from what the code
generates now (`files.stale`).
"""

from services.cli.docs.asyncapi import asyncapi_document
from services.cli.docs.files import render_all, stale, write
from services.cli.docs.openapi import OpenApiDocuments, openapi_documents
from services.cli.docs.readme import render_index
from services.cli.docs.routing import queues_receiving, receives, topic_matches

__all__ = [
    "OpenApiDocuments",
    "asyncapi_document",
    "openapi_documents",
    "queues_receiving",
    "receives",
    "render_all",
    "render_index",
    "stale",
    "topic_matches",
    "write",
]
