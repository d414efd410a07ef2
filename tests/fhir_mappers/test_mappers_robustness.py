"""Malformed input never crashes the mappers (hypothesis): any field of a relevant resource, at any
depth, replaced by arbitrary JSON still gives a PatientRecord, and the record's lines stay valid."""

from __future__ import annotations

import copy
from datetime import date
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fhir_mappers import build_record, draft_orders
from tests import builders as b
from tests.builders import LOINC, RXNORM, SNOMED

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**40), max_value=2**40)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
    | st.sampled_from(["2021-02-30", "2021-13", "20210101", "active", "urn:uuid:", "#"]),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                [
                    "coding",
                    "code",
                    "system",
                    "text",
                    "reference",
                    "start",
                    "end",
                    "value",
                    "display",
                    "concept",
                    "valueCodeableConcept",
                ]
            ),
            children,
            max_size=3,
        )
    ),
    max_leaves=8,
)


def base() -> list[dict[str, Any]]:
    spec = {"resourceType": "Specimen", "id": "s1", "type": b.coded(None, None, "Liver biopsy")}
    her2 = b.her2(True, "2021-01-05")
    her2["specimen"] = {"reference": "Specimen/s1"}
    echo = b.observation("34552-0", when="2022-01-01")
    echo["component"] = [{"code": b.coded(LOINC, "18043-0"), "valueQuantity": {"value": 50}}]
    return [
        b.patient(),
        b.breast_cancer("2020-01-01"),
        b.metastasis(onset="2021-01-01"),
        b.ild("2021-06-01"),
        b.condition("84114007", "Heart failure", "2022-01-01"),
        her2,
        spec,
        echo,
        b.lvef(60, "2021-01-10"),
        b.observation("21907-1", when="2021-01-01", value_code="55440008"),
        b.progression("2021-09-01"),
        b.medication("m1", b.coded(RXNORM, "1371041", "T-DM1")),
        b.med_resource("MedicationRequest", None, "2021-10-01", reference="Medication/m1"),
        b.med_resource(
            "MedicationRequest",
            b.coded(RXNORM, "224905", "trastuzumab"),
            "2021-01-10",
            "2021-08-01",
            status="stopped",
            status_reason=b.coded(SNOMED, b.NO_RESPONSE),
        ),
        b.med_resource(
            "MedicationStatement",
            b.coded(None, None, "Perjeta"),
            "2021-01-10",
            extension=[b.intent(b.PALLIATIVE)],
        ),
        b.med_resource(
            "MedicationAdministration",
            b.coded(RXNORM, "72962", "docetaxel"),
            "2021-01-10",
            shape="r5",
        ),
    ]


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out: list[tuple[Any, ...]] = []
    if isinstance(node, dict):
        for k, v in node.items():
            out.append((*prefix, k))
            out.extend(_paths(v, (*prefix, k)))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out.append((*prefix, i))
            out.extend(_paths(v, (*prefix, i)))
    return out


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_any_malformed_field_never_raises(data: st.DataObject) -> None:
    resources = base()
    n_mutations = data.draw(st.integers(min_value=1, max_value=3))
    for _ in range(n_mutations):
        target = data.draw(st.sampled_from(resources[1:]))
        paths = [p for p in _paths(target) if p[0] not in ("resourceType",)]
        path = data.draw(st.sampled_from(paths))
        parent: Any = target
        for step in path[:-1]:
            parent = parent[step]
        parent[path[-1]] = data.draw(json_values)
    rec = build_record(b.bundle(*copy.deepcopy(resources)), as_of=date(2024, 1, 1))
    assert [ln.number for ln in rec.lines] == list(range(1, len(rec.lines) + 1))
    for a, nxt in zip(rec.lines, rec.lines[1:], strict=False):
        assert a.end is not None and a.end < nxt.start
    # The same data as a draft-orders bundle is read without raising as well.
    draft_orders(b.bundle(*resources))


@settings(max_examples=60, deadline=None)
@given(junk=json_values)
def test_any_top_level_input_never_raises(junk: Any) -> None:
    build_record(junk, as_of=date(2024, 1, 1))
    build_record({"resourceType": "Bundle", "entry": junk}, as_of=date(2024, 1, 1))
    build_record({"resourceType": "Condition", "code": junk, "id": "c"}, as_of=date(2024, 1, 1))
