"""What the mappers' memos must keep: the same answer for the same codes, never a stale answer
for different ones, and nothing carried from one record to the next.

The terminology memoizes code lookups (observation kinds, code sets, medication matches) on the
codings they read; every test goes through build_record with FHIR JSON, the way a request does.
"""

from __future__ import annotations

import copy
import dataclasses
from datetime import date
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.code_systems import LOINC
from engine.model import PatientRecord, ReceptorStatus
from fhir_mappers import build_record, load_terminology
from fhir_mappers.resources import coding_codes
from fhir_mappers.terminology import MEMO_SIZE, Terminology
from tests import builders as b
from tests.builders import RXNORM, SNOMED

AS_OF = date(2024, 6, 1)
POSITIVE, NEGATIVE = "10828004", "260385009"
RXNORM_OID = "urn:oid:2.16.840.1.113883.6.88"
TDXD_UNVERIFIED = "2267579"  # an RxNorm code the table marks unverified: the text decides


def record(*resources: dict[str, Any], terminology: Terminology | None = None) -> PatientRecord:
    return build_record(b.bundle(b.patient(), *resources), as_of=AS_OF, terminology=terminology)


def her2_obs(loinc: str, when: str, value: str, rid: str) -> dict[str, Any]:
    return b.observation(loinc, when=when, value_code=value, value_display="x", rid=rid)


def administration(coding: dict[str, Any], when: str, text: str | None = None) -> dict[str, Any]:
    ma = b.administration(None, "", when)
    ma["medicationCodeableConcept"] = {"coding": [coding], **({"text": text} if text else {})}
    return ma


def drugs(rec: PatientRecord) -> list[str]:
    return sorted({e.drug for e in (*rec.exposures, *rec.early_exposures)})


# -- the same codes give the same answer ------------------------------------------------------


def test_same_coding_in_two_observations_maps_the_same_way() -> None:
    rec = record(
        her2_obs("48676-1", "2021-01-01", POSITIVE, "a"),
        her2_obs("48676-1", "2021-02-01", POSITIVE, "b"),
    )
    assert [(r.source_id, r.method, r.status) for r in rec.her2.results] == [
        ("Observation/b", "interpretation", ReceptorStatus.POSITIVE),
        ("Observation/a", "interpretation", ReceptorStatus.POSITIVE),
    ]


def test_same_coding_in_two_medications_maps_the_same_way() -> None:
    coding = {"system": RXNORM, "code": "224905", "display": "trastuzumab"}
    rec = record(administration(coding, "2021-01-01"), administration(dict(coding), "2021-01-22"))
    assert [(e.drug, len(e.source_ids)) for e in rec.exposures] == [("trastuzumab", 2)]


def test_the_same_codes_with_other_values_are_read_from_each_resource() -> None:
    """The memo is on the code, never on the value: each result keeps its own answer."""
    rec = record(
        her2_obs("48676-1", "2021-01-01", POSITIVE, "old"),
        her2_obs("48676-1", "2021-06-01", NEGATIVE, "new"),
    )
    assert rec.her2.status is ReceptorStatus.NEGATIVE
    assert [c.source_id for c in rec.her2.conflicts] == ["Observation/old"]


# -- different codes never get a remembered answer ------------------------------------------------


def test_a_different_code_is_not_answered_from_the_memo() -> None:
    first = record(her2_obs("48676-1", "2021-01-01", POSITIVE, "a"))
    second = record(her2_obs("85318-4", "2021-01-01", POSITIVE, "a"))
    assert first.her2.basis is not None and first.her2.basis.method == "interpretation"
    assert second.her2.basis is not None and second.her2.basis.method == "ish"


def test_a_code_from_another_system_is_not_answered_from_the_memo() -> None:
    loinc = record(her2_obs("48676-1", "2021-01-01", POSITIVE, "a"))
    other = her2_obs("48676-1", "2021-01-01", POSITIVE, "a")
    other["code"]["coding"][0]["system"] = SNOMED
    assert loinc.her2.status is ReceptorStatus.POSITIVE
    assert record(other).her2.status is ReceptorStatus.UNKNOWN


def test_the_same_unverified_code_with_another_display_is_matched_again() -> None:
    """An unverified RxNorm code decides only with the text: the display is part of the key."""
    tdxd = {"system": RXNORM, "code": TDXD_UNVERIFIED, "display": "fam-trastuzumab deruxtecan"}
    other = {**tdxd, "display": "docetaxel 20 MG/ML Injection"}
    assert drugs(record(administration(tdxd, "2021-01-01"))) == ["fam-trastuzumab deruxtecan"]
    assert drugs(record(administration(other, "2021-01-01"))) == ["docetaxel"]
    assert drugs(record(administration(tdxd, "2021-01-01"))) == ["fam-trastuzumab deruxtecan"]


def test_the_same_coding_with_another_text_is_matched_again() -> None:
    coding = {"system": RXNORM, "code": TDXD_UNVERIFIED}
    assert drugs(record(administration(coding, "2021-01-01", "Enhertu"))) == [
        "fam-trastuzumab deruxtecan"
    ]
    assert drugs(record(administration(coding, "2021-01-01", "Taxotere"))) == ["docetaxel"]


def test_codes_that_are_not_strings_read_as_their_text_and_no_further() -> None:
    """224905 sent as a number reads as the code "224905", as before the memos; True is no code."""
    as_number = {"system": RXNORM, "code": 224905}
    assert drugs(record(administration(as_number, "2021-01-01"))) == ["trastuzumab"]
    obs = her2_obs("48676-1", "2021-01-01", POSITIVE, "a")
    obs["code"]["coding"][0]["code"] = True
    assert record(obs).her2.status is ReceptorStatus.UNKNOWN
    assert record(her2_obs("48676-1", "2021-01-01", POSITIVE, "a")).her2.status is (
        ReceptorStatus.POSITIVE
    )


def test_a_system_alias_maps_like_the_canonical_system() -> None:
    canonical = {"system": RXNORM, "code": "224905"}
    alias = {"system": RXNORM_OID, "code": "224905"}
    assert drugs(record(administration(canonical, "2021-01-01"))) == ["trastuzumab"]
    assert drugs(record(administration(alias, "2021-01-01"))) == ["trastuzumab"]
    unknown = {"system": "http://example.org/local-drugs", "code": "224905"}
    assert drugs(record(administration(unknown, "2021-01-01"))) == []


def test_a_disease_status_value_is_read_per_resource() -> None:
    def status(value: str, when: str, rid: str) -> dict[str, Any]:
        return b.observation(
            "97509-4", when=when, value_code=value, value_display="status", rid=rid
        )

    rec = record(
        status("359746009", "2021-01-01", "stable"),
        status("271299001", "2021-03-01", "worse"),
        status("359746009", "2021-05-01", "stable2"),
    )
    assert [p.source_id for p in rec.progressions] == ["Observation/worse"]


# -- one record, then another ---------------------------------------------------------------------


def _her2_positive_thp() -> dict[str, Any]:
    return b.bundle(
        b.patient(),
        b.breast_cancer(),
        b.metastasis(onset="2021-01-01"),
        b.her2(True),
        *b.thp("2021-02-01", "2021-08-01"),
        b.progression("2021-08-01"),
    )


def _her2_negative() -> dict[str, Any]:
    return b.bundle(
        b.patient("p2"),
        b.breast_cancer(pid="p2"),
        b.her2(False, pid="p2"),
        b.statement("56946", "paclitaxel", "2022-01-01", "2022-04-01", pid="p2"),
    )


def test_build_record_twice_on_the_same_input_gives_equal_records() -> None:
    data = _her2_positive_thp()
    pristine = copy.deepcopy(data)
    assert build_record(data, as_of=AS_OF) == build_record(data, as_of=AS_OF)
    assert data == pristine  # the input is read, never changed


def test_two_records_in_sequence_give_their_own_results() -> None:
    positive, negative = _her2_positive_thp(), _her2_negative()
    first = build_record(positive, as_of=AS_OF)
    other = build_record(negative, as_of=AS_OF)
    again = build_record(positive, as_of=AS_OF)
    assert first == again
    assert first.her2.status is ReceptorStatus.POSITIVE
    assert other.her2.status is ReceptorStatus.NEGATIVE
    assert other.patient_id == "p2" and first.patient_id == "p1"
    assert drugs(first) == ["docetaxel", "pertuzumab", "trastuzumab"]
    assert drugs(other) == ["paclitaxel"]
    assert len(first.lines) == 1 and other.lines == ()


def test_a_terminology_with_other_tables_starts_with_empty_memos() -> None:
    """A copy of the terminology without trastuzumab must not answer from the original's memo."""
    term = load_terminology()
    coding = {"system": RXNORM, "code": "224905"}
    assert drugs(record(administration(coding, "2021-01-01"), terminology=term)) == ["trastuzumab"]
    without = dataclasses.replace(
        term,
        medications=tuple(m for m in term.medications if m.drugs != ("trastuzumab",)),
        _code_index={k: v for k, v in term._code_index.items() if k != ("rxnorm", "224905")},
    )
    assert drugs(record(administration(coding, "2021-01-01"), terminology=without)) == []
    assert drugs(record(administration(coding, "2021-01-01"), terminology=term)) == ["trastuzumab"]


def test_a_terminology_with_other_tables_starts_with_an_empty_text_cache() -> None:
    """The same for a medication known only by its text (the text match is cached too)."""
    term = load_terminology()
    coding = {"system": "urn:local:pharmacy", "code": "X-17"}  # unknown code: read by text
    given = administration(coding, "2021-01-01", text="Trastuzumab 420 mg IV")
    assert drugs(record(given, terminology=term)) == ["trastuzumab"]
    without = dataclasses.replace(
        term, medications=tuple(m for m in term.medications if m.drugs != ("trastuzumab",))
    )
    assert drugs(record(given, terminology=without)) == []


def test_the_memos_stay_bounded() -> None:
    term = dataclasses.replace(load_terminology())
    many = [her2_obs(f"{i}-0", "2021-01-01", POSITIVE, f"o{i}") for i in range(MEMO_SIZE + 50)] + [
        administration({"system": RXNORM, "code": str(10**7 + i)}, "2021-01-01")
        for i in range(MEMO_SIZE + 50)
    ]
    rec = record(*many, her2_obs("48676-1", "2021-01-01", POSITIVE, "last"), terminology=term)
    assert rec.her2.status is ReceptorStatus.POSITIVE  # still answered once the memo is full
    assert len(term._code_memo) <= MEMO_SIZE
    assert len(term._medication_memo) <= MEMO_SIZE
    assert all(len(v.kinds) <= MEMO_SIZE for v in term._derived.values() if hasattr(v, "kinds"))
    assert (
        build_record(
            b.bundle(b.patient(), her2_obs("85318-4", "2021-01-01", NEGATIVE, "x")),
            as_of=AS_OF,
            terminology=term,
        ).her2.status
        is ReceptorStatus.NEGATIVE
    )


# -- the memoized code reader reads codes exactly as coding_codes does -------------------------

_SYSTEMS = st.one_of(
    st.none(),
    st.integers(),
    st.sampled_from([LOINC, SNOMED, "http://snomed.info/sct/", "urn:oid:2.16.840.1.113883.6.1"]),
    st.text(max_size=8),
)
_CODES = st.one_of(
    st.none(), st.integers(), st.booleans(), st.sampled_from(["", "0"]), st.text(max_size=6)
)
_CODING = st.one_of(
    st.fixed_dictionaries({}, optional={"system": _SYSTEMS, "code": _CODES}),
    st.text(max_size=3),
    st.none(),
)
_CONCEPT = st.one_of(
    st.none(),
    st.text(max_size=3),
    st.fixed_dictionaries(
        {}, optional={"coding": st.one_of(st.lists(_CODING, max_size=4), _CODING)}
    ),
)


@settings(max_examples=300, deadline=None)
@given(concept=_CONCEPT)
def test_code_sets_agree_with_coding_codes(concept: Any) -> None:
    """Observation and medication readers use the memo; Conditions use coding_codes: a concept
    must give the same codes either way, for any shape an EHR may send."""
    sets = load_terminology().code_sets(concept)
    assert sets.codes == set(coding_codes(concept))
    assert sets.loinc == set(coding_codes(concept, LOINC))
    assert sets.snomed == set(coding_codes(concept, SNOMED))
