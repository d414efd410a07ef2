"""Every real-size Synthea/mCODE record answered over HTTP (skipped when ../shared is absent)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from bench.shared import missing
from tests.conftest import SYNTHEA, hook_request

RECORDS = sorted(SYNTHEA.glob("*.json.gz")) if SYNTHEA.exists() else []
HER2_POSITIVE = ("Charlsie105_Smith67", "Clarice719_Kertzmann286", "Lasonya941_Carroll471")

pytestmark = pytest.mark.skipif(not RECORDS, reason=missing(SYNTHEA))


@pytest.mark.parametrize(
    "path", RECORDS, ids=lambda p: p.name.split("_")[0] + "_" + p.name.split("_")[1]
)
def test_every_record_is_answered(client: FlaskClient, path: Path) -> None:
    bundle = json.loads(gzip.decompress(path.read_bytes()))
    resp = client.post("/cds-services/her2-next-line", json=hook_request(bundle))
    assert resp.status_code == 200
    cards = resp.get_json()["cards"]
    if not path.name.startswith(HER2_POSITIVE):
        assert cards == [], f"HER2-negative record {path.name} got cards"


def test_lasonya_is_deceased_so_gets_no_cards_though_her_lines_are_read(
    client: FlaskClient,
) -> None:
    """Lasonya's record says she died in 2003: no cards (CLINICAL.md section 1, "in scope at
    all"; issue 18 class 4). Her picture is still read: three metastatic lines (paclitaxel,
    doxorubicin, then trastuzumab + endocrine therapy), which made line 4 the next line when
    the service still advised on deceased patients."""
    from fhir_mappers import build_record

    path = next(p for p in RECORDS if p.name.startswith("Lasonya941_Carroll471"))
    bundle = json.loads(gzip.decompress(path.read_bytes()))
    cards = client.post("/cds-services/her2-next-line", json=hook_request(bundle)).get_json()[
        "cards"
    ]
    assert cards == []
    record = build_record(bundle)
    assert record.deceased and len(record.lines) == 3
    assert "trastuzumab" in record.lines[-1].drugs
