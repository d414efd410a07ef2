"""Prefetch: use what the client sent, fetch what is missing from its FHIR server, or say 412.

CDS Hooks 2.0: a key the client omitted, or that holds an OperationOutcome (alone or inside a
Bundle), is fetched from `fhirServer` with the `fhirAuthorization` bearer token, following `next`
links, all within one hard total time budget; `null` or an empty Bundle means "no data", not an
error. Data that can be neither prefetched nor fetched gives 412. The access token is never
logged, and never sent to any origin but `fhirServer`'s.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Mapping
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import requests

from cds_service.errors import BadRequestError, PreconditionFailedError
from cds_service.prefetch.fhir_client import FhirClient, is_outcome, next_link, split_outcomes
from cds_service.prefetch.fhir_servers import FhirAccess, origin_of

log = logging.getLogger(__name__)

_TOKEN = re.compile(r"\{\{\s*([A-Za-z0-9_.]+)\s*\}\}")
# Keys whose absence (not prefetched, no FHIR server to read) still allows an answer: the
# Patient (scope facts unknown), and the Specimens a receptor result names (a client that
# prefetches the older template set keeps working; the specimen is then said not recorded).
OPTIONAL_KEYS = frozenset({"patient", "specimens"})
MAX_WORKERS = 6
DENY_ALL = FhirAccess()
__all__ = ["is_outcome", "render_template", "resolve", "template_type"]


def _user_tokens(context: Mapping[str, Any]) -> dict[str, str]:
    user = context.get("userId")
    rtype, _, uid = (user if isinstance(user, str) else "").partition("/")
    names = {
        "Practitioner": "userPractitionerId",
        "PractitionerRole": "userPractitionerRoleId",
        "Patient": "userPatientId",
        "RelatedPerson": "userRelatedPersonId",
    }
    return {names[rtype]: uid} if rtype in names and uid else {}


def render_template(template: str, context: Mapping[str, Any]) -> str | None:
    """Fill the 2.0 tokens of a template; None when a token has no value in this context."""
    users = _user_tokens(context)
    missing = False

    def sub(m: re.Match[str]) -> str:
        nonlocal missing
        name = m.group(1)
        value: Any = None
        if name.startswith("context."):
            value = context.get(name[len("context.") :])
        else:
            value = users.get(name)
        if not isinstance(value, str) or not value:
            missing = True
            return ""
        return quote(value, safe="/")

    rendered = _TOKEN.sub(sub, template)
    return None if missing else rendered


def template_type(template: str) -> str:
    """The resource type a template reads or searches (`Patient/{{...}}` -> Patient)."""
    return template.split("?", 1)[0].split("/", 1)[0]


@dataclass
class _Given:
    """What one prefetch key holds once checked: data, and whether more must be fetched."""

    value: Any
    refetch: bool = False  # fetch it all with the template
    more: str | None = None  # a `next` link: fetch the rest


def _check_given(key: str, template: str, value: Any) -> _Given:
    """Classify one prefetch value the client sent (CDS Hooks 2.0 'Prefetch' rules)."""
    if value is None:
        return _Given(None)
    if not isinstance(value, dict):
        raise BadRequestError(f"prefetch.{key} must be a FHIR resource, a Bundle or null")
    rtype = value.get("resourceType")
    if rtype == "OperationOutcome":
        return _Given(None, refetch=True)
    if rtype == "Bundle":
        kept, failed = split_outcomes(value, f"prefetch.{key}")
        if failed:
            return _Given(None, refetch=True)
        cleaned = {k: v for k, v in value.items() if k not in ("entry", "link")}
        if kept:
            cleaned["entry"] = kept
        return _Given(cleaned, more=next_link(value))
    expected = template_type(template)
    if rtype != expected:
        raise BadRequestError(
            f"prefetch.{key} holds {str(rtype)[:64]!r}; its template asks for {expected} "
            "(a resource, a searchset Bundle, or null)"
        )
    return _Given(value)


def resolve(
    body: Mapping[str, Any],
    templates: Mapping[str, str],
    *,
    budget_seconds: float,
    session: requests.Session | None = None,
    access: FhirAccess = DENY_ALL,
) -> dict[str, Any]:
    """Every prefetch key's data: given, or fetched; PreconditionFailedError when neither.

    `access` says which fhirServer values may be read at all (deny by default), and which
    without a token (a local test FHIR server behind the CDS Hooks sandbox, which sends no
    fhirAuthorization and omits prefetch keys whose search found nothing). Raises BadRequestError
    for a prefetch value that cannot be what its template asks for."""
    started = time.monotonic()
    raw = body.get("prefetch")
    given: Mapping[str, Any] = raw if isinstance(raw, dict) else {}
    context = body.get("context")
    if not isinstance(context, dict):
        context = {}
    out: dict[str, Any] = {}
    jobs: dict[str, str] = {}
    continued: dict[str, dict[str, Any]] = {}
    for key, template in templates.items():
        if key not in given:
            checked = _Given(None, refetch=True)
        else:
            checked = _check_given(key, template, given[key])
        out[key] = checked.value
        if checked.refetch:
            url = render_template(template, context)
            if url is not None:
                jobs[key] = url
            elif key not in OPTIONAL_KEYS:
                raise PreconditionFailedError(f"prefetch template for {key} needs a context value")
        elif checked.more:
            jobs[key] = checked.more
            continued[key] = checked.value
    if not jobs:
        return out
    server = body.get("fhirServer")
    auth = body.get("fhirAuthorization")
    token = auth.get("access_token") if isinstance(auth, dict) else None
    if not isinstance(token, str) or not token:
        token = None
    why = _not_fetchable(server, token, access)
    if why:
        required = sorted(k for k in jobs if k not in OPTIONAL_KEYS)
        if required:
            raise PreconditionFailedError(
                f"prefetch data missing or incomplete for: {', '.join(required)}; {why}"
            )
        return out
    assert isinstance(server, str)
    own = session is None
    client = FhirClient(
        server,
        token,
        started + budget_seconds,
        session,
        allowed=(*access.allowed, *access.tokenless),
        max_requests=access.max_requests,
    )
    types = {key: template_type(templates[key]) for key in jobs}
    try:
        fetched = _fetch_parallel(client, jobs, continued, types)
    finally:
        if own:
            client.session.close()
    for key, value in fetched.items():
        if key in continued:
            entries = [*(continued[key].get("entry") or []), *(value.get("entry") or [])]
            if entries:
                out[key]["entry"] = entries
        else:
            out[key] = value
    log.info(
        "prefetch: fetched %s from the FHIR server in %d requests",
        ", ".join(sorted(jobs)),
        client.calls,
    )
    return out


def _not_fetchable(server: Any, token: str | None, access: FhirAccess) -> str | None:
    """Why missing data cannot be fetched from this fhirServer; None when it can. A server
    off the allow-list is never contacted, and the answer is the same whatever its state."""
    if not isinstance(server, str) or not server:
        return "and no fhirServer with fhirAuthorization was given to fetch it"
    if not access.may_read(server):
        log.info(
            "prefetch: fhirServer %s is not on the allow-list; not contacted", origin_of(server)
        )
        return (
            "and fhirServer is not a FHIR server this service may read "
            "(HER2CDS_FHIR_SERVERS, or the client's fhir_servers), so it was not contacted"
        )
    if token is None and not access.may_read_without_token(server):
        return "and no fhirServer with fhirAuthorization was given to fetch it"
    return None


def _fetch_parallel(
    client: FhirClient,
    jobs: Mapping[str, str],
    continued: Mapping[str, dict[str, Any]],
    types: Mapping[str, str],
) -> dict[str, Any]:
    """Fetch every job at once; the whole lot within the client's deadline, or 412."""
    pool = ThreadPoolExecutor(max_workers=min(MAX_WORKERS, len(jobs)), thread_name_prefix="fhir")
    futures: dict[Future[Any], str] = {}
    try:
        for key, url in jobs.items():
            start = {"resourceType": "Bundle"} if key in continued else None
            futures[pool.submit(client.fetch_all, url, start, rtype=types[key])] = key
        done, pending = wait(futures, timeout=client.remaining(), return_when=FIRST_EXCEPTION)
        for fut in done:
            exc = fut.exception()
            if exc is not None:
                raise exc
        if pending:
            late = ", ".join(sorted({types[futures[f]] for f in pending}))
            raise PreconditionFailedError(
                f"{late} could not be read from fhirServer: "
                "the server did not answer within the time budget"
            )
        return {futures[f]: f.result() for f in done}
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
