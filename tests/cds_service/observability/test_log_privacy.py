"""No patient id, name or token in any log line at any level (issue 20 item 7): every record
logged at DEBUG while the service fetches from FHIR servers that answer, fail, redirect, or are
down, including the HTTP client's own lines (urllib3 logs each request's path and query)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from cds_service import create_app
from cds_service.observability.logging_setup import JsonFormatter
from her2cds_cli.local_fhir import patient_keys_of
from tests.cds_service.prefetch.test_fhir_allowlist import redirecting as redirecting  # fixture
from tests.cds_service.prefetch.test_prefetch import closed_port_url
from tests.conftest import ClosingClient, load_fixture
from tests.protocol_support import FhirServer, checking_client, fallback_request

PID = "zq-private-4711"
FAMILY = "Quillfeather"
TOKEN = "tok-Zx9-never-logged"
PV = "/cds-services/her2-next-line"


def named_patient_resources() -> tuple[list[dict[str, Any]], set[str]]:
    text = json.dumps(load_fixture("her2_after_thp_progression")).replace("thp-prog", PID)
    bundle = json.loads(text)
    for entry in bundle["entry"]:
        if entry["resource"]["resourceType"] == "Patient":
            entry["resource"]["name"] = [{"family": FAMILY, "given": ["Ottilie"]}]
    _, keys = patient_keys_of(bundle)
    return [e["resource"] for e in bundle["entry"]], keys


def all_log_text(records: list[logging.LogRecord]) -> str:
    formatter = JsonFormatter()
    return "\n".join(formatter.format(r) for r in records)


def test_no_patient_id_name_or_token_in_any_log_line(
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    redirecting: tuple[str, FhirServer, str],
) -> None:
    caplog.set_level(logging.DEBUG)
    app = create_app(
        {"database_url": f"sqlite:///{tmp_path / 'db'}", "testing": True, "log_level": "DEBUG"}
    )
    client = checking_client(app)
    resources, keys = named_patient_resources()
    ok = FhirServer(resources, patient_keys=keys).start()
    paged = FhirServer(resources, patient_keys=keys, page_size=1).start()
    failing = FhirServer(resources, patient_keys=keys, status=500).start()
    no_patient = FhirServer(
        [r for r in resources if r["resourceType"] != "Patient"], patient_keys=keys
    ).start()
    redirect_url, _, _ = redirecting
    statuses = []
    try:
        for url in (
            ok.url,
            paged.url,
            failing.url,
            no_patient.url,
            redirect_url,
            closed_port_url(),
            ok.url.replace("127.0.0.1", "localhost"),  # not on the allow-list
        ):
            body = fallback_request("patient-view", PID, url, TOKEN)
            statuses.append(client.post(PV, json=body).status_code)
            # and the timeline page of that patient
            ClosingClient(app).get(f"/timeline/{PID}?view=made-up-{PID}")
    finally:
        for s in (ok, paged, failing, no_patient):
            s.stop()
    assert statuses == [200, 200, 412, 200, 412, 412, 412]
    assert ok.requests and failing.requests  # the fetches did happen
    text = all_log_text(caplog.records)
    assert any(r.name.startswith("urllib3") for r in caplog.records), "urllib3 DEBUG captured"
    assert "FHIR fetch answered 500" in text
    for secret in (PID, FAMILY, "Ottilie", TOKEN):
        assert secret not in text, [r.getMessage() for r in caplog.records if secret in str(r.msg)]
