"""GETs from the CDS client's FHIR server for missing prefetch data: bounded and checked.

Every URL must be on the allow-list (cds_service.prefetch.fhir_servers) and on fhirServer's origin;
redirects are never followed; one call makes at most HER2CDS_FHIR_MAX_REQUESTS requests, all
within one deadline. An answer that is not what was asked for (a redirect, an error status,
not JSON, an OperationOutcome, a resource where a search Bundle was expected, another patient)
is a 412 that names the resource type and what the server answered. Logs carry the resource
type and status only: never a path (it holds the patient id), a query or the token.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Mapping
from typing import Any, NoReturn
from urllib.parse import unquote, urljoin, urlsplit

import orjson
import requests

from cds_service.errors import BadRequestError, PreconditionFailedError
from cds_service.prefetch.fhir_servers import ServerPattern, is_allowed, split_url

log = logging.getLogger(__name__)

MAX_RESPONSE_BYTES = 32 * 1024 * 1024
_CHUNK = 64 * 1024
_HARMLESS = frozenset({"information", "warning"})
_NO_DATA_STATUSES = frozenset({404, 410})


def is_outcome(value: Any) -> bool:
    return isinstance(value, dict) and value.get("resourceType") == "OperationOutcome"


def _is_blocking_outcome(value: Any) -> bool:
    """An OperationOutcome that reports a failure (an error, or no usable severity at all)."""
    if not is_outcome(value):
        return False
    issues = value.get("issue")
    if not isinstance(issues, list) or not issues:
        return True
    return any(not isinstance(i, dict) or i.get("severity") not in _HARMLESS for i in issues)


def next_link(bundle: Mapping[str, Any]) -> str | None:
    links = bundle.get("link")
    if not isinstance(links, list):
        return None
    for lk in links:
        if isinstance(lk, dict) and lk.get("relation") == "next":
            url = lk.get("url")
            if isinstance(url, str) and url:
                return url
    return None


def split_outcomes(
    bundle: Mapping[str, Any], where: str | None
) -> tuple[list[dict[str, Any]], bool]:
    """(entries without OperationOutcomes, whether any OperationOutcome reported a failure).
    One pass over the entries (a 20,000-resource prefetch is read here first)."""
    entries = bundle.get("entry", [])
    if entries is None:
        return [], False
    if not isinstance(entries, list):
        _malformed(where)
    kept: list[dict[str, Any]] = []
    failed = False
    for e in entries:
        if not isinstance(e, dict):
            _malformed(where)
        resource = e.get("resource")
        if isinstance(resource, dict):
            if resource.get("resourceType") == "OperationOutcome":
                failed = failed or _is_blocking_outcome(resource)
                continue
        elif resource is not None or "resource" in e:
            _malformed(where)
        kept.append(e)
    return kept, failed


def _malformed(where: str | None) -> NoReturn:
    if where is None:
        raise PreconditionFailedError("the server answered a malformed Bundle")
    raise BadRequestError(f"{where}: Bundle.entry must be a list of entries with resources")


def _resource_type(url: str) -> str:
    """The resource type a relative read or search URL names (`Patient/x`, `Condition?...`)."""
    return url.split("?", 1)[0].strip("/").split("/", 1)[0] or "FHIR data"


class FhirClient:
    """GETs from an allowed FHIR server with the client's bearer token (None: an open server
    the configuration lets us read without one), within one deadline and request budget."""

    def __init__(
        self,
        base_url: str,
        access_token: str | None,
        deadline: float,
        session: requests.Session | None = None,
        *,
        allowed: Iterable[ServerPattern] = (),
        max_requests: int = 50,
    ) -> None:
        self.base_url = base_url.rstrip("/") + "/"
        self._origin = split_url(self.base_url)
        self._allowed = tuple(allowed)
        self._token = access_token
        self.deadline = deadline
        self.session = session or requests.Session()
        self.max_requests = max_requests
        self.calls = 0
        self._lock = threading.Lock()

    def __repr__(self) -> str:  # never show the token, even in a debugger or a traceback
        return f"FhirClient({self.base_url!r})"

    def remaining(self) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise PreconditionFailedError("the server did not answer within the time budget")
        return left

    def _may_get(self, full: str) -> None:
        here = split_url(full)
        if here is None or self._origin is None or here[:3] != self._origin[:3]:
            raise PreconditionFailedError(
                "a `next` link points outside fhirServer; it was not followed"
            )
        if not is_allowed(full, self._allowed):
            raise PreconditionFailedError("a `next` link points outside the allowed FHIR server")
        with self._lock:
            if self.calls >= self.max_requests:
                raise PreconditionFailedError(
                    f"more than {self.max_requests} FHIR requests would be needed "
                    "(HER2CDS_FHIR_MAX_REQUESTS)"
                )
            self.calls += 1

    def get(self, url: str) -> dict[str, Any] | None:
        """One GET; None when the server says the resource does not exist (404/410)."""
        full = urljoin(self.base_url, url)
        self._may_get(full)
        headers = {"Accept": "application/fhir+json, application/json"}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        left = self.remaining()
        try:
            with self.session.get(
                full,
                headers=headers,
                timeout=(min(left, 5.0), left),
                stream=True,
                allow_redirects=False,
            ) as resp:
                status = resp.status_code
                raw = self._read(resp) if status == 200 else b""
        except requests.RequestException as exc:
            log.warning("FHIR fetch failed: %s", type(exc).__name__)
            raise PreconditionFailedError(
                f"the server could not be reached ({type(exc).__name__})"
            ) from exc
        if status in _NO_DATA_STATUSES:
            return None
        if status != 200:
            log.warning("FHIR fetch answered %s", status)
            if 300 <= status < 400:
                raise PreconditionFailedError(
                    f"the server answered a redirect (HTTP {status}), not data"
                )
            raise PreconditionFailedError(f"the server answered HTTP {status}")
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise PreconditionFailedError(
                "the server answered HTTP 200 with something not JSON"
            ) from exc
        if not isinstance(data, dict):
            raise PreconditionFailedError(
                "the server answered HTTP 200 with something not a resource"
            )
        if is_outcome(data):
            raise PreconditionFailedError("the server answered HTTP 200 with an OperationOutcome")
        return data

    def _read(self, resp: requests.Response) -> bytes:
        """The body, read in chunks so that a slow server cannot outlast the deadline."""
        chunks: list[bytes] = []
        size = 0
        for chunk in resp.iter_content(_CHUNK):
            self.remaining()
            size += len(chunk)
            if size > MAX_RESPONSE_BYTES:
                raise PreconditionFailedError("the server's answer is too large")
            chunks.append(chunk)
        return b"".join(chunks)

    def fetch_all(
        self, url: str, start: dict[str, Any] | None = None, *, rtype: str | None = None
    ) -> Any:
        """A read, or a search with every page (`next` links) merged into one Bundle; a 412
        naming `rtype` (the template's resource type) when it cannot be read.

        With `start`, `url` is the `next` link of a Bundle the client already sent."""
        rtype = rtype or _resource_type(url)
        try:
            return self._fetch_all(url, start, rtype)
        except PreconditionFailedError as exc:
            message = f"{rtype} could not be read from fhirServer: {exc.message}"
            raise PreconditionFailedError(message) from exc

    def _fetch_all(self, url: str, start: dict[str, Any] | None, rtype: str) -> Any:
        search = start is not None or "?" in url
        first = start if start is not None else self.get(url)
        if first is None:
            if search:  # a search the server does not offer: the data is unknown, not absent
                raise PreconditionFailedError("the server has no such search (HTTP 404)")
            return None  # a read of something that does not exist: no data
        if not search:
            return _checked_read(first, url, rtype)
        entries, failed = _checked_page(first)
        nxt: str | None = url if start is not None else next_link(first)
        while nxt and not failed:
            page = self.get(nxt)
            if page is None:
                raise PreconditionFailedError("a `next` link answered HTTP 404")
            more, failed = _checked_page(page)
            entries.extend(more)
            nxt = next_link(page)
        if failed:
            raise PreconditionFailedError("the server's search reported an error")
        bundle = {k: v for k, v in first.items() if k not in ("entry", "link")}
        if entries:
            bundle["entry"] = entries
        return bundle


def _checked_page(page: dict[str, Any]) -> tuple[list[dict[str, Any]], bool]:
    """A search answer must be a searchset Bundle (not a resource, not another kind of Bundle)."""
    got = page.get("resourceType")
    if got != "Bundle":
        raise PreconditionFailedError(f"a search answered {str(got)[:64]!r}, not a Bundle")
    kind = page.get("type")
    if kind is not None and kind != "searchset":
        raise PreconditionFailedError(
            f"a search answered a {str(kind)[:64]!r} Bundle, not a searchset"
        )
    return split_outcomes(page, None)


def _checked_read(resource: dict[str, Any], url: str, rtype: str) -> dict[str, Any]:
    """A read must answer the resource asked for: its type, and its id when it has one."""
    got = resource.get("resourceType")
    if got != rtype:
        raise PreconditionFailedError(f"a read answered {str(got)[:64]!r}, not a {rtype}")
    wanted = unquote(urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1])
    if "id" in resource and resource["id"] != wanted:
        raise PreconditionFailedError(f"a read answered another {rtype} than the one asked for")
    return resource
