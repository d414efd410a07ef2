"""Property-based tests for the line builder: order, noise and shape invariants (hypothesis)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from fhir_mappers import build_record
from tests import builders as b

AS_OF = date(2026, 1, 1)
D0 = date(2020, 1, 1)

DRUGS = [
    ("224905", "trastuzumab"),
    ("1298944", "pertuzumab"),
    ("72962", "docetaxel"),
    ("56946", "paclitaxel"),
    ("1371041", "T-DM1"),
    (None, "Enhertu"),
    ("2361290", "tucatinib 150 MG Oral Tablet"),
    ("194000", "capecitabine"),
    ("72965", "letrozole"),
    ("1601374", "palbociclib"),
    ("1790099", "Doxorubicin Hydrochloride 2 MG/ML Injection"),
    (None, "Phesgo"),
]
RTYPES = ["MedicationStatement", "MedicationRequest", "MedicationAdministration"]

course = st.tuples(
    st.sampled_from(DRUGS),
    st.integers(min_value=-200, max_value=1200),  # first day (negative: before metastatic date)
    st.integers(min_value=1, max_value=8),  # cycles
    st.sampled_from([7, 14, 21, 28]),  # days between cycles
    st.sampled_from(RTYPES),
    st.booleans(),  # one resource per cycle (True) or one statement-like period (False)
)
history = st.tuples(
    st.lists(course, min_size=0, max_size=7),
    st.lists(st.integers(min_value=0, max_value=1300), max_size=3),  # progression days
)


def resources(h: tuple[list[Any], list[int]]) -> list[dict[str, Any]]:
    courses, progs = h
    out: list[dict[str, Any]] = [
        b.patient(),
        b.breast_cancer("2019-06-01"),
        b.her2(True, "2019-06-05"),
        b.metastasis(onset=D0.isoformat()),
    ]
    for (rx, text), first, n, every, rtype, per_cycle in courses:
        concept = b.coded(b.RXNORM if rx else None, rx, text)
        start = D0 + timedelta(days=first)
        if per_cycle:
            for i in range(n):
                when = (start + timedelta(days=i * every)).isoformat()
                out.append(b.med_resource(rtype, concept, when))
        else:
            end = (start + timedelta(days=n * every)).isoformat()
            out.append(b.med_resource(rtype, concept, start.isoformat(), end))
    out.extend(b.progression((D0 + timedelta(days=d)).isoformat()) for d in progs)
    return out


def lines_of(res: list[dict[str, Any]]) -> Any:
    return build_record(b.bundle(*res), as_of=AS_OF).lines


UNRELATED = [
    {
        "resourceType": "Immunization",
        "id": "imm",
        "status": "completed",
        "vaccineCode": b.coded("http://hl7.org/fhir/sid/cvx", "140", "Influenza"),
    },
    {"resourceType": "Encounter", "id": "enc", "status": "finished"},
    b.condition("65363002", "Otitis media", "2020-05-01"),
    b.observation("8302-2", when="2020-05-01", quantity=165, unit="cm"),
    b.request("310965", "Ibuprofen 200 MG Oral Tablet", "2020-05-01"),
    b.request("72236", "denosumab 120 MG/1.7 ML Injection", "2020-05-01"),
    b.medication("unused-med", b.coded(b.RXNORM, "224905", "trastuzumab")),  # not referenced
]

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(h=history, data=st.data())
def test_shuffling_resources_never_changes_the_lines(h: Any, data: st.DataObject) -> None:
    res = resources(h)
    shuffled = data.draw(st.permutations(res))
    assert lines_of(list(shuffled)) == lines_of(res)


@SETTINGS
@given(h=history, noise=st.sampled_from(UNRELATED), pos=st.integers(min_value=0))
def test_adding_an_unrelated_resource_never_changes_the_lines(
    h: Any, noise: dict[str, Any], pos: int
) -> None:
    res = resources(h)
    noisy = list(res)
    noisy.insert(pos % (len(res) + 1), noise)
    assert lines_of(noisy) == lines_of(res)


@SETTINGS
@given(h=history)
# Found by a long run: a course one day before the metastatic date must not merge with cycles
# after it (the same resource would be both early-setting and part of a line).
@example(
    h=(
        [
            (("224905", "trastuzumab"), 0, 1, 7, "MedicationStatement", False),
            (("224905", "trastuzumab"), -1, 1, 7, "MedicationStatement", False),
            ((None, "Phesgo"), 0, 1, 7, "MedicationStatement", False),
        ],
        [],
    )
)
def test_lines_are_numbered_and_never_overlap(h: Any) -> None:
    res = resources(h)
    rec = build_record(b.bundle(*res), as_of=AS_OF)
    assert [ln.number for ln in rec.lines] == list(range(1, len(rec.lines) + 1))
    ids = {f"{r['resourceType']}/{r['id']}" for r in res}
    for ln in rec.lines:
        assert ln.start >= D0  # only metastatic-setting therapy makes lines
        assert ln.end is None or ln.end >= ln.start
        assert ln.source_ids and set(ln.source_ids) <= ids
        assert ln.drugs and ln.start_reason
    for a, nxt in zip(rec.lines, rec.lines[1:], strict=False):
        assert a.end is not None and a.end < nxt.start
    # Every metastatic-setting exposure is in some line; every early one in none.
    in_lines = {s for ln in rec.lines for s in ln.source_ids}
    for e in rec.exposures:
        if e in rec.early_exposures:
            assert not set(e.source_ids) & in_lines
        else:
            assert set(e.source_ids) <= in_lines


@SETTINGS
@given(h=history, data=st.data())
def test_a_resource_sent_twice_never_changes_the_lines(h: Any, data: st.DataObject) -> None:
    res = resources(h)
    dup = data.draw(st.sampled_from(res))
    twice = [*res, dict(dup)]
    rec = build_record(b.bundle(*twice), as_of=AS_OF)
    assert rec.lines == lines_of(res)
    assert rec.data_issues == build_record(b.bundle(*res), as_of=AS_OF).data_issues


def test_differing_copies_keep_the_latest_update_and_say_so() -> None:
    old = b.statement("224905", "trastuzumab", "2020-02-01", "2020-06-01", rid="dup")
    old["meta"] = {"lastUpdated": "2020-06-02T00:00:00Z"}
    new = dict(
        old,
        effectivePeriod={"start": "2020-02-01", "end": "2020-12-01"},
        meta={"lastUpdated": "2020-12-02T00:00:00Z"},
    )
    base = [b.patient(), b.breast_cancer(), b.metastasis(onset="2020-01-01")]
    for order in ((old, new), (new, old)):
        rec = build_record(b.bundle(*base, *order), as_of=AS_OF)
        assert rec.lines[0].end == date(2020, 12, 1)
        assert any(i.source_id == "MedicationStatement/dup" for i in rec.data_issues)
