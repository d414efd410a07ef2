"""Shape repair: single objects are wrapped only where FHIR R4 has an array.

MedicationAdministration.dosage is one object (0..1), while MedicationStatement.dosage and
MedicationRequest.dosageInstruction are arrays: wrapping the first made every valid
administration fail validation ("does not conform to FHIR MedicationAdministration").
"""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from fhir_mappers import build_record
from fhir_mappers.resources import _LIST_FIELDS, RELEVANT_TYPES, _model, repair
from tests import builders as b

AS_OF = date(2024, 6, 1)
DOSAGE = {"route": {"text": "intravenous"}, "dose": {"value": 420, "unit": "mg"}}


def _conformance(resource: dict[str, Any]) -> list[str]:
    rec = build_record(b.bundle(b.patient(), b.her2(), resource), as_of=AS_OF)
    return [i.message for i in rec.data_issues if "does not conform" in i.message]


def test_administration_with_its_single_dosage_conforms() -> None:
    ma = b.administration("2119714", "trastuzumab", "2024-01-10")
    ma["dosage"] = dict(DOSAGE)
    assert _conformance(ma) == []
    assert repair(ma)["dosage"] == DOSAGE


def test_statement_dosage_sent_as_one_object_is_wrapped_and_conforms() -> None:
    ms = b.statement("2119714", "trastuzumab", "2024-01-10")
    ms["dosage"] = {"text": "420 mg every 3 weeks"}
    assert _conformance(ms) == []
    assert repair(ms)["dosage"] == [{"text": "420 mg every 3 weeks"}]


def test_request_dosage_instruction_sent_as_one_object_is_wrapped() -> None:
    mr = b.request("2119714", "trastuzumab", "2024-01-10")
    mr["dosageInstruction"] = {"text": "420 mg"}
    assert _conformance(mr) == []
    assert repair(mr)["dosageInstruction"] == [{"text": "420 mg"}]


def test_single_observation_body_site_is_left_alone_and_still_read() -> None:
    o = b.observation("48676-1", when="2024-01-10", value_code="10828004", value_display="Positive")
    o["bodySite"] = {"text": "Left breast"}
    assert repair(o)["bodySite"] == {"text": "Left breast"}
    assert _conformance(o) == []


def _is_list_field(rtype: str, name: str) -> bool | None:
    field = _model(rtype, False).model_fields.get(name)
    if field is None:
        return None
    return "list" in str(field.annotation).lower()


@pytest.mark.parametrize("rtype", sorted(RELEVANT_TYPES))
def test_repair_wraps_exactly_the_r4_array_fields(rtype: str) -> None:
    """Checked against the R4 (R4B) models themselves, field by field."""
    for name in sorted(_LIST_FIELDS):
        is_list = _is_list_field(rtype, name)
        if is_list is None:
            continue
        fixed = repair({"resourceType": rtype, name: {"text": "x"}})
        assert isinstance(fixed[name], list) is is_list, f"{rtype}.{name}"
