"""The arena's OpenAPI schema, made to match every response the server sends.

Every error is ``{"detail": "<message>"}`` (:class:`~trustlab.server.errors.ErrorDetail`),
including 422, whose ``detail`` is one string naming each invalid parameter (FastAPI's own
schema would say it is a list). :func:`document_errors` adds to every operation the error
responses it can give, with ``Retry-After`` where a refusal carries it.
"""

from __future__ import annotations

from typing import Any

from trustlab.server.errors import ErrorDetail

DESCRIPTIONS = {
    400: "The file, the batch or the form fails validation; the message names the row or field.",
    401: "No API key, or a key that is not valid, revoked or expired.",
    403: "The task's deadline has passed, no phase of it is open, or a detector flagged the team.",
    404: "No such task, artefact or submission of this team.",
    408: "The upload stalled or was far too slow; the connection is closed.",
    411: "The upload did not declare its Content-Length.",
    409: "The request conflicts with the team's state: a failed submission cannot be final, or "
    "the team already has as many final choices as the task allows.",
    413: "The body is over the task's size limit.",
    422: "A parameter, header or form field is missing or invalid; 'detail' names each one.",
    429: "A cooldown, a submission limit, a query budget or rate limit, or too many uploads "
    "at once from the team; wait for Retry-After.",
    500: "The victim model failed on a query; the queries were given back.",
    503: "The arena is overloaded (no free upload or check slot, the database busy); nothing "
    "was stored or counted: retry after Retry-After.",
}
RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before trying again.",
        "schema": {"type": "integer"},
    }
}
#: What every operation may answer besides its own codes: a malformed parameter and overload.
COMMON = (422, 503)
#: Codes each operation may answer (by method and path), besides :data:`COMMON`.
OPERATION_ERRORS: dict[tuple[str, str], tuple[int, ...]] = {
    ("get", "/api/v1/tasks"): (),
    ("get", "/api/v1/tasks/{task_id}"): (404,),
    ("get", "/api/v1/tasks/{task_id}/artifacts/{name}"): (401, 404),
    ("get", "/api/v1/tasks/{task_id}/leaderboard"): (404,),
    ("post", "/api/v1/tasks/{task_id}/query"): (400, 401, 403, 404, 413, 429, 500),
    ("get", "/api/v1/tasks/{task_id}/query"): (401, 404),
    ("get", "/api/v1/submissions/{submission_id}"): (401, 404),
    ("get", "/api/v1/submissions"): (401, 404),
    ("post", "/api/v1/submissions/{submission_id}/select"): (401, 403, 404, 409),
    ("post", "/api/v1/submissions/{submission_id}/unselect"): (401, 403, 404),
    ("get", "/api/v1/team/submissions"): (401,),
    ("post", "/submit/{task_id}"): (400, 401, 403, 404, 408, 411, 413, 429),
}


#: Bodies that routes read themselves (FastAPI cannot see them), by method and path.
REQUEST_BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("post", "/api/v1/tasks/{task_id}/query"): {
        "required": True,
        "description": "A batch of inputs of shape (n, *input_shape): a NumPy .npy array, or "
        "JSON for small batches. GET on the same path gives the shape and limits.",
        "content": {
            "application/x-npy": {"schema": {"type": "string", "format": "binary"}},
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["inputs"],
                    "properties": {"inputs": {"type": "array", "items": {}}},
                }
            },
        },
    },
}


def _error_schema(code: int) -> dict[str, Any]:
    schema: dict[str, Any] = {
        "description": DESCRIPTIONS[code],
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorDetail"}}},
    }
    if code in (429, 503):
        schema["headers"] = RETRY_AFTER
    return schema


def document_errors(schema: dict[str, Any]) -> dict[str, Any]:
    """Give every operation of ``schema`` its error responses with the ``ErrorDetail`` body;
    replace FastAPI's list-shaped 422 and drop its validation-error models."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components["ErrorDetail"] = ErrorDetail.model_json_schema()
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            codes = (*COMMON, *OPERATION_ERRORS.get((method, path), ()))
            for code in codes:
                responses[str(code)] = _error_schema(code)
            body = REQUEST_BODIES.get((method, path))
            if body is not None and "requestBody" not in operation:
                operation["requestBody"] = body
            if path == "/api/v1/tasks/{task_id}/artifacts/{name}":
                responses["200"] = {
                    "description": "The artefact's bytes.",
                    "content": {
                        "application/octet-stream": {
                            "schema": {"type": "string", "format": "binary"}
                        }
                    },
                }
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)
    return schema
