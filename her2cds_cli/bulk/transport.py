"""HTTP for the export: retries (429 and 503 after Retry-After, other transient 5xx and dropped
connections with bounded back-off), the bearer token, and errors told in one sentence."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any, Protocol
from urllib.parse import urlsplit

import requests

from cds_service.errors import Her2CdsError

# OperationOutcome issue codes (IssueType) under `transient` that say "try again later";
# `exception` is left out: servers use it for fatal errors.
TRANSIENT_CODES = frozenset(
    {"transient", "lock-error", "no-store", "timeout", "incomplete", "throttled"}
)
_LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1"})


class BulkError(Her2CdsError):
    """An export step failed; its text is one sentence for the operator."""


class GoneError(BulkError):
    """The export job or one of its files is no longer on the server (404/410)."""


class TokenSource(Protocol):
    def header(self) -> str: ...

    def invalidate(self) -> None: ...


@dataclass
class Timing:
    """How long to wait: bounded back-off, the server's Retry-After within a ceiling."""

    attempts: int = 6
    backoff_min: float = 1.0
    backoff_max: float = 60.0
    retry_after_max: float = 3600.0
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.time

    def backoff(self, attempt: int) -> float:
        return float(min(self.backoff_max, self.backoff_min * 2**attempt))

    def wait(self, header: str | None, attempt: int) -> float:
        """Retry-After (delay-seconds or HTTP-date) if readable, else the back-off."""
        after = retry_after(header, self.clock())
        return self.backoff(attempt) if after is None else min(after, self.retry_after_max)


def retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a Retry-After header; None when absent or unreadable."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when.timestamp() - now)


def _outcome(resp: requests.Response) -> dict[str, Any] | None:
    try:
        body = resp.json()
    except ValueError:
        return None
    return (
        body if isinstance(body, dict) and body.get("resourceType") == "OperationOutcome" else None
    )


def _issue_text(issue: Any) -> str:
    if not isinstance(issue, dict):
        return ""
    details = issue.get("details")
    text = details.get("text") if isinstance(details, dict) else None
    return str(issue.get("diagnostics") or text or issue.get("code") or "").strip()


def describe(resp: requests.Response, what: str) -> str:
    """'<what> failed: HTTP 400 Bad Request: <the OperationOutcome's first issue>.'"""
    head = f"{what} failed: HTTP {resp.status_code} {resp.reason or ''}".rstrip()
    outcome = _outcome(resp)
    issues = [t for t in map(_issue_text, (outcome or {}).get("issue") or []) if t]
    if issues:
        more = f" (and {len(issues) - 1} more issues)" if len(issues) > 1 else ""
        return f"{head}: {issues[0].rstrip('.')}{more}."
    body = resp.text.strip().splitlines()[0][:200] if resp.text.strip() else ""
    return f"{head}: {body}." if body else f"{head}."


def transient(resp: requests.Response) -> bool:
    """A 5xx worth retrying: no OperationOutcome (a gateway's), or one whose codes are transient."""
    if resp.status_code < 500:
        return False
    outcome = _outcome(resp)
    if outcome is None:
        return True
    codes = {i.get("code") for i in outcome.get("issue") or [] if isinstance(i, dict)}
    return bool(codes) and codes <= TRANSIENT_CODES


@dataclass
class Client:
    """One session for the whole export; `request` retries and adds the token when asked."""

    timing: Timing = field(default_factory=Timing)
    auth: TokenSource | None = None
    log: Callable[[str], None] = print
    session: requests.Session = field(default_factory=requests.Session)

    def request(
        self,
        method: str,
        url: str,
        what: str,
        *,
        headers: dict[str, str] | None = None,
        params: list[tuple[str, str]] | None = None,
        data: dict[str, str] | None = None,
        token: bool = True,
        stream: bool = False,
    ) -> requests.Response:
        """The response of the first attempt that is not throttled or transiently failing."""
        use_token = token and self.auth is not None
        if use_token:
            check_tls(url)
        refreshed = False
        attempt = 0
        while True:
            hdrs = dict(headers or {})
            if use_token and self.auth is not None:
                hdrs["Authorization"] = self.auth.header()
            try:
                resp = self.session.request(
                    method,
                    url,
                    headers=hdrs,
                    params=params,
                    data=data,
                    stream=stream,
                    timeout=(15, 300),
                )
            except (requests.ConnectionError, requests.Timeout) as exc:
                if attempt + 1 >= self.timing.attempts:
                    raise BulkError(
                        f"{what} failed: cannot reach {url} ({type(exc).__name__})."
                    ) from exc
                self._pause(self.timing.backoff(attempt), f"{what}: connection failed")
                attempt += 1
                continue
            if resp.status_code == 401 and use_token and self.auth is not None and not refreshed:
                resp.close()
                self.auth.invalidate()  # the token expired early or was revoked: one new one
                refreshed = True
                continue
            throttled = resp.status_code in (429, 503) and "Retry-After" in resp.headers
            if (throttled or resp.status_code == 429 or transient(resp)) and (
                attempt + 1 < self.timing.attempts
            ):
                wait = self.timing.wait(resp.headers.get("Retry-After"), attempt)
                self._pause(wait, f"{what}: HTTP {resp.status_code}")
                resp.close()
                attempt += 1
                continue
            return resp

    def _pause(self, seconds: float, why: str) -> None:
        self.log(f"{why}; retrying in {seconds:.0f} s")
        self.timing.sleep(seconds)


def check_tls(url: str) -> None:
    """A bearer token travels over https only (plain http to this machine is allowed, for tests)."""
    parts = urlsplit(url)
    if parts.scheme != "https" and parts.hostname not in _LOOPBACK:
        raise BulkError(f"refusing to send the access token over {parts.scheme}: {url}.")
