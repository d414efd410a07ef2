"""The Bulk Data export flow: kick-off, polling, downloads, resume and clean-up.

Running the same command again continues the job recorded in the output directory's state file
(the same status URL, complete files skipped) instead of starting a second export.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

from her2cds_cli.bulk import download, state
from her2cds_cli.bulk.request import kickoff_params, kickoff_path
from her2cds_cli.bulk.state import ExportState
from her2cds_cli.bulk.transport import BulkError, Client, GoneError, describe

FHIR_JSON = "application/fhir+json"
RESTART_HINT = "run the same command with --restart for a fresh export"


@dataclass
class Export:
    """One export into `out` from `server` (a Group's patients, or every patient)."""

    server: str
    out: Path
    client: Client = field(default_factory=Client)
    group: str | None = None
    type_filter: bool = True
    as_of: date | None = None  # the earliest evaluation date the export must serve
    poll_timeout: float = 24 * 3600.0  # give up waiting after this long (the job is kept)
    log: Callable[[str], None] = print

    # -- the whole run ----------------------------------------------------------------------
    def run(self, *, restart: bool = False) -> ExportState:
        """Kick off (or continue) the export and download everything; the finished state."""
        self.out.mkdir(parents=True, exist_ok=True)
        try:
            job = state.load(self.out)
        except BulkError:
            if not restart:
                raise
            (self.out / state.STATE_FILE).unlink()  # unreadable: nothing of it can be resumed
            job = None
        if job is not None and not job.same_request(self.server, self.group):
            raise BulkError(
                f"{self.out} holds an export from {job.server}"
                + (f" (group {job.group})" if job.group else "")
                + "; use another directory, or --restart to replace it."
            )
        if job is not None and restart:
            self._forget(job)
            job = None
        if job is not None and job.complete:
            self.log(f"the export in {self.out} is already complete; --restart for a fresh one")
            return job
        if job is None:
            job = self._kickoff()
        else:
            self.log(f"continuing the export at {job.status_url}")
        if job.manifest is None:
            job.manifest = self._poll(job.status_url)
            job.files = download.plan(job.manifest)
            state.save(self.out, job)
        self._download(job)
        self._delete(job.status_url)
        job.complete = True
        state.save(self.out, job)
        return job

    def cancel(self) -> bool:
        """DELETE the job recorded in `out` and forget it; False when there is none."""
        job = state.load(self.out) if self.out.exists() else None
        if job is None:
            return False
        if not job.complete:
            self._delete(job.status_url)
        state.remove(self.out, job)
        return True

    # -- steps --------------------------------------------------------------------------------
    def _kickoff(self) -> ExportState:
        stray = sorted(p.name for p in self.out.glob("*.ndjson*"))
        if stray:
            raise BulkError(
                f"{self.out} already holds NDJSON not from an export of this command "
                f"({', '.join(stray[:3])}); choose an empty directory."
            )
        url = urljoin(self.server.rstrip("/") + "/", kickoff_path(self.group))
        resp = self.client.request(
            "GET",
            url,
            "the export kick-off",
            headers={"Accept": FHIR_JSON, "Prefer": "respond-async"},
            params=kickoff_params(type_filter=self.type_filter, as_of=self.as_of),
        )
        location = resp.headers.get("Content-Location")
        if resp.status_code != 202:
            raise BulkError(describe(resp, "the export kick-off"))
        if not location:
            raise BulkError("the export kick-off answered 202 without a Content-Location.")
        job = ExportState(
            server=self.server,
            group=self.group,
            status_url=urljoin(resp.url, location),
            kicked_off=datetime.now(UTC).isoformat(timespec="seconds"),
        )
        state.save(self.out, job)
        self.log(f"export started; status at {job.status_url}")
        return job

    def _poll(self, status_url: str) -> dict[str, Any]:
        """Poll until the manifest comes (honouring Retry-After, else a bounded back-off)."""
        started = time.monotonic()
        timing = self.client.timing
        polls = 0
        while True:
            resp = self.client.request(
                "GET",
                status_url,
                "the export status request",
                headers={"Accept": "application/json"},
            )
            if resp.status_code == 200:
                return _manifest(resp, self.client)
            if resp.status_code in (404, 410):
                raise GoneError(
                    f"the export job at {status_url} is gone (HTTP {resp.status_code}): it "
                    f"expired or was cancelled; {RESTART_HINT}."
                )
            if resp.status_code != 202:
                raise BulkError(describe(resp, "the export"))
            wait = timing.wait(resp.headers.get("Retry-After"), polls)
            if time.monotonic() - started + wait > self.poll_timeout:
                raise BulkError(
                    f"the export is still running after {self.poll_timeout:.0f} s; run the "
                    "same command again to keep waiting for it."
                )
            progress = resp.headers.get("X-Progress")
            self.log(
                f"export in progress{': ' + progress if progress else ''}; next look in {wait:.0f} s"
            )
            timing.sleep(wait)
            polls += 1

    def _download(self, job: ExportState) -> None:
        assert job.manifest is not None
        token = bool(job.manifest.get("requiresAccessToken"))
        for f in job.files:
            if download.is_complete(self.out, f):
                continue
            download.fetch(self.client, self.out, f, token=token)
            state.save(self.out, job)
            self.log(f"downloaded {f.name} ({f.lines} resources)")
        for line in download.summarize_errors(self.out, job.files):
            self.log(f"the server reported problems: {line}")
        types = {f.type for f in job.files if not f.error}
        if "MedicationRequest" in types and "Medication" not in types:
            self.log(
                "the server exported no Medication resources: medications that requests "
                "reference (not contain) cannot be read by the engine"
            )

    def _delete(self, status_url: str) -> None:
        """Tell the server it may delete the job's files; a failure is reported, not fatal."""
        try:
            resp = self.client.request("DELETE", status_url, "deleting the export job")
        except BulkError as exc:
            self.log(f"warning: {exc}")
            return
        if resp.status_code not in (200, 202, 204, 404, 410):
            self.log(f"warning: {describe(resp, 'deleting the export job')}")

    def _forget(self, job: ExportState) -> None:
        if not job.complete:
            self._delete(job.status_url)
        state.remove(self.out, job)
        self.log(f"forgot the export at {job.status_url}")


def _manifest(resp: Any, client: Client) -> dict[str, Any]:
    """The complete manifest, with any further pages (`link` next, Bulk Data 3.0) merged in."""
    try:
        manifest = resp.json()
    except ValueError as exc:
        raise BulkError("the export's manifest is not JSON.") from exc
    if not isinstance(manifest, dict) or not isinstance(manifest.get("output"), list):
        raise BulkError("the export's manifest has no output list.")
    page, seen = manifest, {resp.url}
    while True:
        nxt = next(
            (
                ln.get("url")
                for ln in page.get("link") or []
                if isinstance(ln, dict) and ln.get("relation") == "next"
            ),
            None,
        )
        if not isinstance(nxt, str) or nxt in seen:
            return manifest
        seen.add(nxt)
        more = client.request(
            "GET", nxt, "the manifest's next page", headers={"Accept": "application/json"}
        )
        if more.status_code != 200:
            raise BulkError(describe(more, "the manifest's next page"))
        page = more.json()
        for key in ("output", "error"):
            manifest.setdefault(key, []).extend(page.get(key) or [])
