"""Prefetch: use what the client sent, fetch what is missing from its FHIR server, or say 412.

CDS Hooks 2.0: a key the client omitted, or that holds an OperationOutcome, is fetched from
`fhirServer` with the `fhirAuthorization` bearer token (following `next` links, within one hard
time budget); `null` or an empty Bundle means "no data", not an error. Data that can be neither
prefetched nor fetched gives 412. The access token is never logged.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urljoin

import requests

from cds_service.errors import PreconditionFailed

log = logging.getLogger(__name__)

_TOKEN = re.compile(r"\{\{\s*([A-Za-z0-9_.]+)\s*\}\}")
OPTIONAL_KEYS = frozenset({"patient"})
MAX_PAGES = 50


def is_outcome(value: Any) -> bool:
    return isinstance(value, dict) and value.get("resourceType") == "OperationOutcome"


def _user_tokens(context: Mapping[str, Any]) -> dict[str, str]:
    user = str(context.get("userId", ""))
    rtype, _, uid = user.partition("/")
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


def _clean_bundle(value: dict[str, Any]) -> tuple[dict[str, Any], bool, str | None]:
    """(bundle without OperationOutcome entries, whether it carried any, its `next` link)."""
    entries = value.get("entry") or []
    kept = [e for e in entries if not (isinstance(e, dict) and is_outcome(e.get("resource")))]
    had_outcome = len(kept) != len(entries)
    nxt = next(
        (
            lk.get("url")
            for lk in value.get("link") or []
            if isinstance(lk, dict) and lk.get("relation") == "next" and lk.get("url")
        ),
        None,
    )
    cleaned = dict(value)
    cleaned["entry"] = kept
    return cleaned, had_outcome, nxt


class FhirClient:
    """Fetches searches from the client's FHIR server within one total time budget."""

    def __init__(
        self,
        base_url: str,
        access_token: str | None,
        budget_seconds: float,
        session: requests.Session | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/") + "/"
        self._token = access_token
        self.deadline = time.monotonic() + budget_seconds
        self.session = session or requests.Session()
        self.calls = 0

    def _remaining(self) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise PreconditionFailed("the FHIR server did not answer within the time budget")
        return left

    def get(self, url: str) -> dict[str, Any]:
        full = url if url.startswith(("http://", "https://")) else urljoin(self.base_url, url)
        headers = {"Accept": "application/fhir+json, application/json"}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        self.calls += 1
        try:
            resp = self.session.get(full, headers=headers, timeout=self._remaining())
        except requests.RequestException as exc:
            log.warning("FHIR fetch failed: %s", type(exc).__name__)
            raise PreconditionFailed("the FHIR server could not be reached") from exc
        if resp.status_code == 404:
            return {}
        if resp.status_code >= 400:
            log.warning("FHIR fetch answered %s for %s", resp.status_code, full.split("?")[0])
            raise PreconditionFailed(f"the FHIR server answered {resp.status_code}")
        try:
            data = resp.json()
        except ValueError as exc:
            raise PreconditionFailed(
                "the FHIR server answered with something that is not JSON"
            ) from exc
        if not isinstance(data, dict):
            raise PreconditionFailed(
                "the FHIR server answered with something that is not a resource"
            )
        return data

    def fetch_all(self, url: str) -> dict[str, Any] | None:
        """A read, or a search with every page (`next` links) merged into one Bundle."""
        first = self.get(url)
        if not first:
            return None
        if first.get("resourceType") != "Bundle":
            return first
        bundle, _, nxt = _clean_bundle(first)
        pages = 1
        while nxt and pages < MAX_PAGES:
            page, _, nxt = _clean_bundle(self.get(nxt))
            bundle["entry"].extend(page.get("entry") or [])
            pages += 1
        bundle.pop("link", None)
        return bundle


def resolve(
    body: Mapping[str, Any],
    templates: Mapping[str, str],
    *,
    budget_seconds: float,
    session: requests.Session | None = None,
) -> dict[str, Any]:
    """Every prefetch key's data: given, or fetched; raises PreconditionFailed when neither."""
    given = body.get("prefetch") if isinstance(body.get("prefetch"), dict) else {}
    assert isinstance(given, dict)
    context = body.get("context") or {}
    out: dict[str, Any] = {}
    to_fetch: dict[str, str] = {}
    for key, template in templates.items():
        value = given.get(key, ...)
        if value is ... or is_outcome(value):
            to_fetch[key] = template
            continue
        if value is None:
            out[key] = None
            continue
        if isinstance(value, dict) and value.get("resourceType") == "Bundle":
            cleaned, had_outcome, nxt = _clean_bundle(value)
            if had_outcome and not cleaned["entry"]:
                to_fetch[key] = template
                continue
            if nxt:
                to_fetch[key + "#next"] = nxt
            out[key] = cleaned
            continue
        out[key] = value
    if not to_fetch:
        return out
    server = body.get("fhirServer")
    auth = body.get("fhirAuthorization")
    token = auth.get("access_token") if isinstance(auth, dict) else None
    required = [k for k in to_fetch if k.split("#")[0] not in OPTIONAL_KEYS]
    if not isinstance(server, str) or not server or not isinstance(token, str) or not token:
        if required:
            names = ", ".join(sorted({k.split("#")[0] for k in required}))
            raise PreconditionFailed(
                f"prefetch data missing for: {names}; and no fhirServer with fhirAuthorization "
                "was given to fetch it"
            )
        return out
    client = FhirClient(server, token, budget_seconds, session)
    for key, template in to_fetch.items():
        base_key = key.split("#")[0]
        if key.endswith("#next"):
            more = client.fetch_all(template)
            if more and isinstance(out.get(base_key), dict):
                out[base_key]["entry"].extend(more.get("entry") or [])
            continue
        url = render_template(template, context)
        if url is None:
            if base_key in OPTIONAL_KEYS:
                continue
            raise PreconditionFailed(f"prefetch template for {key} needs a context value not given")
        out[key] = client.fetch_all(url)
    return out
