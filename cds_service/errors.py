"""The service's exception tree. Every non-2xx answer is a FHIR OperationOutcome."""

from __future__ import annotations

from typing import Any


class ServiceError(Exception):
    """Base of every error the service answers with; `status` is the HTTP status."""

    status = 500
    code = "exception"  # FHIR issue-type

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def outcome(self) -> dict[str, Any]:
        return operation_outcome(self.message, self.code)


class BadRequest(ServiceError):
    status, code = 400, "invalid"


class Unauthorized(ServiceError):
    status, code = 401, "login"


class Forbidden(ServiceError):
    status, code = 403, "forbidden"


class NotFound(ServiceError):
    status, code = 404, "not-found"


class MethodNotAllowed(ServiceError):
    status, code = 405, "not-supported"


class RequestTimeout(ServiceError):
    """The client stopped sending its request body."""

    status, code = 408, "timeout"


class PreconditionFailed(ServiceError):
    """Data neither prefetched nor fetchable (CDS Hooks 2.0: 412)."""

    status, code = 412, "incomplete"


class PayloadTooLarge(ServiceError):
    status, code = 413, "too-costly"


class UnsupportedMediaType(ServiceError):
    status, code = 415, "not-supported"


class Unavailable(ServiceError):
    status, code = 503, "transient"


def operation_outcome(
    message: str, code: str = "exception", severity: str = "error"
) -> dict[str, Any]:
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": severity, "code": code, "diagnostics": message}],
    }
