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
from collections.abc import Collection, Mapping
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, NoReturn
from urllib.parse import quote, urljoin, urlsplit

import orjson
import requests

from cds_service.errors import BadRequest, PreconditionFailed

log = logging.getLogger(__name__)

_TOKEN = re.compile(r"\{\{\s*([A-Za-z0-9_.]+)\s*\}\}")
OPTIONAL_KEYS = frozenset({"patient"})
MAX_PAGES = 50
MAX_WORKERS = 6
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


@dataclass
class _Given:
    """What one prefetch key holds once checked: data, and whether more must be fetched."""

    value: Any
    refetch: bool = False  # fetch it all with the template
    more: str | None = None  # a `next` link: fetch the rest


def _split_outcomes(
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
        raise PreconditionFailed("the FHIR server answered a malformed Bundle")
    raise BadRequest(f"{where}: Bundle.entry must be a list of entries with resources")


def _check_given(key: str, template: str, value: Any) -> _Given:
    """Classify one prefetch value the client sent (CDS Hooks 2.0 'Prefetch' rules)."""
    if value is None:
        return _Given(None)
    if not isinstance(value, dict):
        raise BadRequest(f"prefetch.{key} must be a FHIR resource, a Bundle or null")
    rtype = value.get("resourceType")
    if rtype == "OperationOutcome":
        return _Given(None, refetch=True)
    if rtype == "Bundle":
        kept, failed = _split_outcomes(value, f"prefetch.{key}")
        if failed:
            return _Given(None, refetch=True)
        cleaned = {k: v for k, v in value.items() if k not in ("entry", "link")}
        if kept:
            cleaned["entry"] = kept
        return _Given(cleaned, more=next_link(value))
    expected = template_type(template)
    if rtype != expected:
        raise BadRequest(
            f"prefetch.{key} holds {str(rtype)[:64]!r}; its template asks for {expected} "
            "(a resource, a searchset Bundle, or null)"
        )
    return _Given(value)


class FhirClient:
    """GETs from the client's FHIR server with its bearer token (None: an open server that the
    configuration trusts without one), within one deadline."""

    def __init__(
        self,
        base_url: str,
        access_token: str | None,
        deadline: float,
        session: requests.Session | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/") + "/"
        self._origin = _origin(self.base_url)
        self._token = access_token
        self.deadline = deadline
        self.session = session or requests.Session()
        self.calls = 0

    def __repr__(self) -> str:  # never show the token, even in a debugger or a traceback
        return f"FhirClient({self.base_url!r})"

    def remaining(self) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise PreconditionFailed("the FHIR server did not answer within the time budget")
        return left

    def get(self, url: str) -> dict[str, Any] | None:
        """One GET; None when the server says the resource does not exist (404/410)."""
        full = urljoin(self.base_url, url)
        if _origin(full) != self._origin:
            raise PreconditionFailed(
                "a FHIR `next` link points outside fhirServer; it was not followed"
            )
        headers = {"Accept": "application/fhir+json, application/json"}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        self.calls += 1
        left = self.remaining()
        try:
            with self.session.get(
                full, headers=headers, timeout=(min(left, 5.0), left), stream=True
            ) as resp:
                status = resp.status_code
                raw = b"" if status in _NO_DATA_STATUSES or status >= 400 else self._read(resp)
        except requests.RequestException as exc:
            log.warning("FHIR fetch failed: %s", type(exc).__name__)
            raise PreconditionFailed("the FHIR server could not be reached") from exc
        if status in _NO_DATA_STATUSES:
            return None
        if status >= 400:
            log.warning("FHIR fetch answered %s for %s", status, urlsplit(full).path)
            raise PreconditionFailed(f"the FHIR server answered {status}")
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise PreconditionFailed("the FHIR server answered with something not JSON") from exc
        if not isinstance(data, dict):
            raise PreconditionFailed("the FHIR server answered with something not a resource")
        if is_outcome(data):
            raise PreconditionFailed("the FHIR server answered with an OperationOutcome")
        return data

    def _read(self, resp: requests.Response) -> bytes:
        """The body, read in chunks so that a slow server cannot outlast the deadline."""
        chunks: list[bytes] = []
        size = 0
        for chunk in resp.iter_content(_CHUNK):
            self.remaining()
            size += len(chunk)
            if size > MAX_RESPONSE_BYTES:
                raise PreconditionFailed("the FHIR server's answer is too large")
            chunks.append(chunk)
        return b"".join(chunks)

    def fetch_all(self, url: str, start: dict[str, Any] | None = None) -> Any:
        """A read, or a search with every page (`next` links) merged into one Bundle.

        With `start`, `url` is the `next` link of a Bundle the client already sent."""
        first = start if start is not None else self.get(url)
        if first is None:
            if "?" in url:  # a search the server does not offer: the data is unknown, not absent
                raise PreconditionFailed(
                    f"the FHIR server has no {urlsplit(url).path.rsplit('/', 1)[-1]} search"
                )
            return None  # a read of something that does not exist: no data
        if first.get("resourceType") != "Bundle":
            return first
        entries, failed = _split_outcomes(first, None)
        nxt: str | None = url if start is not None else next_link(first)
        pages = 1
        while nxt and not failed:
            if pages >= MAX_PAGES:
                raise PreconditionFailed(f"the FHIR search has more than {MAX_PAGES} pages")
            page = self.get(nxt)
            if page is None or page.get("resourceType") != "Bundle":
                raise PreconditionFailed("a FHIR `next` link did not answer a Bundle")
            more, failed = _split_outcomes(page, None)
            entries.extend(more)
            nxt = next_link(page)
            pages += 1
        if failed:
            raise PreconditionFailed("the FHIR server's search reported an error")
        bundle = {k: v for k, v in first.items() if k not in ("entry", "link")}
        if entries:
            bundle["entry"] = entries
        return bundle


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port or {"http": 80, "https": 443}.get(scheme)
    except ValueError:
        port = -1
    return scheme, (parts.hostname or "").lower(), port


def _normal(url: str) -> str:
    return url.strip().rstrip("/").lower()


def resolve(
    body: Mapping[str, Any],
    templates: Mapping[str, str],
    *,
    budget_seconds: float,
    session: requests.Session | None = None,
    open_servers: Collection[str] = (),
) -> dict[str, Any]:
    """Every prefetch key's data: given, or fetched; PreconditionFailed when neither.

    `open_servers` are fhirServer base URLs the configuration allows to be read without a
    token (a local test FHIR server behind the CDS Hooks sandbox, which sends no
    fhirAuthorization and omits prefetch keys whose search found nothing). Raises BadRequest
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
                raise PreconditionFailed(f"prefetch template for {key} needs a context value")
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
    usable = isinstance(server, str) and bool(server)
    if usable and token is None:
        usable = _normal(str(server)) in {_normal(u) for u in open_servers}
    if not usable:
        required = sorted(k for k in jobs if k not in OPTIONAL_KEYS)
        if required:
            raise PreconditionFailed(
                f"prefetch data missing or incomplete for: {', '.join(required)}; and no "
                "fhirServer with fhirAuthorization was given to fetch it"
            )
        return out
    own = session is None
    client = FhirClient(str(server), token, started + budget_seconds, session)
    try:
        fetched = _fetch_parallel(client, jobs, continued)
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


def _fetch_parallel(
    client: FhirClient, jobs: Mapping[str, str], continued: Mapping[str, dict[str, Any]]
) -> dict[str, Any]:
    """Fetch every job at once; the whole lot within the client's deadline, or 412."""
    pool = ThreadPoolExecutor(max_workers=min(MAX_WORKERS, len(jobs)), thread_name_prefix="fhir")
    futures: dict[Future[Any], str] = {}
    try:
        for key, url in jobs.items():
            start = {"resourceType": "Bundle"} if key in continued else None
            futures[pool.submit(client.fetch_all, url, start)] = key
        done, pending = wait(futures, timeout=client.remaining(), return_when=FIRST_EXCEPTION)
        for fut in done:
            exc = fut.exception()
            if exc is not None:
                raise exc
        if pending:
            raise PreconditionFailed("the FHIR server did not answer within the time budget")
        return {futures[f]: f.result() for f in done}
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
