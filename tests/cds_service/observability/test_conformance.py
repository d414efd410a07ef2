"""Resources that do not conform to the FHIR models: reported after the answer, never a crash."""

from __future__ import annotations

import re

from flask.testing import FlaskClient

from tests import builders as b
from tests.conftest import her2_ext, hook_request, load_fixture


def _nonconforming(client: FlaskClient, rtype: str) -> float:
    text = client.get("/metrics").get_data(as_text=True)
    m = re.search(
        r'^her2cds_fhir_nonconforming_resources_total\{resource_type="' + rtype + r'"\} (\S+)$',
        text,
        re.M,
    )
    return float(m.group(1)) if m else 0.0


def test_nonconforming_resource_is_counted_after_the_answer_and_cards_unchanged(
    client: FlaskClient,
) -> None:
    bundle = load_fixture("her2_after_thp_progression")
    clean = client.post("/cds-services/her2-next-line", json=hook_request(bundle))
    before = _nonconforming(client, "Observation")
    bad = b.lvef(48, "2025-10-15", pid="thp-prog")
    bad["issued"] = "yesterday"  # not a FHIR instant; the mappers read the effective date
    bundle["entry"].append({"resource": bad})
    resp = client.post("/cds-services/her2-next-line", json=hook_request(bundle))
    assert resp.status_code == 200
    assert _nonconforming(client, "Observation") == before + 1
    kinds = [her2_ext(c)["kind"] for c in resp.get_json()["cards"]]
    assert kinds.count("next-line") == 1
    assert [her2_ext(c)["kind"] for c in clean.get_json()["cards"]].count("next-line") == 1
