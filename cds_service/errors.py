"""The service's exception tree, with one root. Every non-2xx answer is a FHIR OperationOutcome.

    Her2CdsError                      root of every error the service raises
    ├── ServiceError                  answered over HTTP with `status` and an OperationOutcome
    │   ├── BadRequestError 400, UnauthorizedError 401, ForbiddenError 403,
    │   ├── NotFoundError 404, MethodNotAllowedError 405, RequestTimeoutError 408,
    │   ├── PreconditionFailedError 412, PayloadTooLargeError 413,
    │   └── UnsupportedMediaTypeError 415, UnavailableError 503
    ├── config.ConfigError            a bad HER2CDS_* setting (start-up stops)
    ├── prefetch.fhir_servers.ServerPatternError (also a ValueError)
    ├── security.jwks.JwksError       an unusable JWK Set (also a ValueError)
    └── security.auth.AuthFailure, AuthUnavailable   a refused or uncheckable client JWT

Every HTTP error's name ends in Error, so none shadows Werkzeug's classes of the same meaning (BadRequest,
NotFound, MethodNotAllowed, Forbidden, ...).
"""

from __future__ import annotations

from typing import Any


class Her2CdsError(Exception):
    """Root of every error the service raises."""


class ServiceError(Her2CdsError):
    """Base of every error the service answers with; `status` is the HTTP status."""

    status = 500
    code = "exception"  # FHIR issue-type

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def outcome(self) -> dict[str, Any]:
        return operation_outcome(self.message, self.code)


class BadRequestError(ServiceError):
    status, code = 400, "invalid"


class UnauthorizedError(ServiceError):
    status, code = 401, "login"


class ForbiddenError(ServiceError):
    status, code = 403, "forbidden"


class NotFoundError(ServiceError):
    status, code = 404, "not-found"


class MethodNotAllowedError(ServiceError):
    status, code = 405, "not-supported"


class RequestTimeoutError(ServiceError):
    """The client stopped sending its request body."""

    status, code = 408, "timeout"


class PreconditionFailedError(ServiceError):
    """Data neither prefetched nor fetchable (CDS Hooks 2.0: 412)."""

    status, code = 412, "incomplete"


class PayloadTooLargeError(ServiceError):
    status, code = 413, "too-costly"


class UnsupportedMediaTypeError(ServiceError):
    status, code = 415, "not-supported"


class UnavailableError(ServiceError):
    status, code = 503, "transient"


def operation_outcome(
    message: str, code: str = "exception", severity: str = "error"
) -> dict[str, Any]:
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": severity, "code": code, "diagnostics": message}],
    }
