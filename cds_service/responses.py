"""The service's JSON answers, for every room that answers (api, security, the app's error
handlers): a JSON body, or an OperationOutcome with its status."""

from __future__ import annotations

from typing import Any

import orjson
from flask import Response

from cds_service.errors import operation_outcome


def json_response(data: Any, status: int = 200) -> Response:
    """`data` as an application/json answer."""
    return Response(orjson.dumps(data), status=status, mimetype="application/json")


def outcome_response(message: str, code: str, status: int) -> Response:
    """An OperationOutcome of one error issue (`code`: its FHIR issue type) with `status`."""
    return json_response(operation_outcome(message, code), status)
