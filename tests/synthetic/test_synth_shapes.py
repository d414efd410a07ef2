"""The issue-18 shapes of `her2-cds synth`: written as real FHIR, readable, seeded, shared as the
catalogue says, with the ground truth of the revised CLINICAL.md (not the engine's answer)."""

from __future__ import annotations

import hashlib
import importlib
import json
import math
from datetime import date, timedelta
from typing import Any

import pytest

from engine.model import Specimen
from fhir_mappers import build_record
from synthetic.expected_regimen import TDXD
from synthetic.generate import patient_bundle
from synthetic.journey import Course, Event, Her2Test, Journey, Line, catalogue
from synthetic.shapes import shape_of, shapes
from synthetic.truth import truth as answer_of

AS_OF = date(2026, 11, 1)
SHAPES = list(catalogue()["shapes"])
N = 5


def _model(rtype: str) -> Any:
    return getattr(importlib.import_module(f"fhir.resources.R4B.{rtype.lower()}"), rtype)


def _resources(bundle: dict[str, Any], rtype: str | None = None) -> list[dict[str, Any]]:
    return [
        e["resource"]
        for e in bundle["entry"]
        if rtype is None or e["resource"]["resourceType"] == rtype
    ]


def _cohort(shape: str, n: int = N, seed: int = 13) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    kinds = shapes()[shape]["kinds"]
    return [patient_bundle(seed, i, AS_OF, kinds[i % len(kinds)], shape) for i in range(n)]


@pytest.mark.parametrize("shape", SHAPES)
def test_each_shape_writes_valid_r4b_that_the_mappers_read(shape: str) -> None:
    for bundle, truth in _cohort(shape):
        assert truth["shape"] == shape and f"shape:{shape}" in truth["tags"]
        for res in _resources(bundle):
            _model(res["resourceType"]).model_validate(res)
        record = build_record(bundle, as_of=AS_OF)
        assert record.patient_id == truth["patient_id"]


@pytest.mark.parametrize("shape", SHAPES)
def test_each_shape_is_deterministic_by_seed(shape: str) -> None:
    kind = shapes()[shape]["kinds"][0]
    a = json.dumps(patient_bundle(3, 7, AS_OF, kind, shape), sort_keys=True)
    b = json.dumps(patient_bundle(3, 7, AS_OF, kind, shape), sort_keys=True)
    c = json.dumps(patient_bundle(4, 7, AS_OF, kind, shape), sort_keys=True)
    assert a == b and a != c


# md5 of the sorted-key JSON of patients 0-3 of seed 5 as generator version 1 wrote them (before
# the shapes); they have no shape, so they must stay byte for byte the same. Update only when the
# journeys themselves are meant to change.
BEFORE_SHAPES = {
    0: "fa9f8b4ce8c5cc8472dc18a653ee32ee",
    1: "d327020f9cc0cad48b05392c74a11c46",
    2: "00546875a752516e5812e3eb4f4a92d6",
    3: "327fbfb792a96c31edbc3c318fc6ebb9",
}


def test_a_patient_without_a_shape_is_drawn_as_before_the_shapes() -> None:
    """The shape comes from its own random stream: the rest of the cohort is as it was."""
    for i, digest in BEFORE_SHAPES.items():
        assert shape_of(5, i, "her2-metastatic") == ""
        bundle, truth_ = patient_bundle(5, i, AS_OF)
        assert truth_["shape"] == ""
        text = json.dumps(bundle, sort_keys=True).encode()
        assert hashlib.md5(text).hexdigest() == digest, i


def test_shape_shares_follow_the_catalogue() -> None:
    n = 6000
    for kind in ("her2-metastatic", "early-only", "her2-negative"):
        counts: dict[str, int] = {}
        for i in range(n):
            s = shape_of(21, i, kind)
            counts[s] = counts.get(s, 0) + 1
        for name, spec in shapes().items():
            share = float(spec["share"]) if kind in spec["kinds"] else 0.0
            sigma = math.sqrt(n * share * (1 - share)) or 1.0
            assert abs(counts.get(name, 0) - n * share) <= 4 * sigma, (kind, name, counts)


def _dates(res: dict[str, Any]) -> list[date]:
    out = []
    for key in ("effectiveDateTime", "authoredOn", "onsetDateTime", "recordedDate", "dateAsserted"):
        if key in res:
            out.append(date.fromisoformat(res[key][:10]))
    for key in ("effectivePeriod",):
        for v in (res.get(key) or {}).values():
            out.append(date.fromisoformat(v[:10]))
    return out


def test_admin_only_ongoing_line_is_administrations_within_the_grace_window() -> None:
    cat = catalogue()["drugs"]
    for bundle, truth in _cohort("admin-only-ongoing"):
        types = {r["resourceType"] for r in _resources(bundle)}
        assert "MedicationAdministration" in types
        assert not types & {"MedicationStatement", "MedicationRequest"}
        last = truth["lines"][-1]
        assert last["ongoing"] and last["recorded_as"] == "MedicationAdministration only"
        for drug, g in last["grace"].items():
            gap = (AS_OF - date.fromisoformat(g["last_dose"])).days
            cycle = int(cat[drug]["cycle_days"])
            assert gap <= g["ongoing_if_within_days"]  # CLINICAL.md 2.5: still ongoing
            if cat[drug]["route"] != "oral":
                assert gap > cycle  # and one interval late: a naive "last dose + 21 days" ends it
        exp = truth["expected"]
        assert exp["timing"] == "on-progression" and exp["action"] == "continue"


def test_negated_text_is_free_text_and_never_a_fact_in_the_truth() -> None:
    phrases = catalogue()["shape_params"]["negated_text"]
    allowed = {p for topic in phrases.values() for mode in topic.values() for p in mode}
    for bundle, truth in _cohort("negated-text", 8):
        texts = [
            c["code"]["text"] for c in _resources(bundle, "Condition") if "coding" not in c["code"]
        ]
        assert texts and set(texts) <= allowed
        if truth["kind"] == "early-only":
            assert truth["outcome"] == "none" and not truth["metastatic"]
        elif not any(t.startswith("ild-") for t in truth["tags"]):
            assert not truth["expected"]["ild"]
            assert "tdxd-ild" not in truth["warnings"]["required"]


def test_deceased_and_paediatric_patients_get_no_cards_in_the_truth() -> None:
    for bundle, truth in _cohort("deceased", 12):
        patient = _resources(bundle, "Patient")[0]
        assert patient.get("deceasedBoolean") is True or "deceasedDateTime" in patient
        if "deceasedDateTime" in patient:
            died = date.fromisoformat(patient["deceasedDateTime"])
            newest = max(d for r in _resources(bundle) for d in _dates(r))
            if "deceased-long-ago" in truth["tags"]:
                assert died < AS_OF.replace(year=AS_OF.year - 9) < newest  # Synthea's shape
            else:
                assert newest < died < AS_OF
        assert truth["outcome"] == "none" and truth["scope"]["reason"] == "deceased"
        assert truth["expected"] is None and not truth["warnings"]["required"]
    for bundle, truth in _cohort("paediatric"):
        born = date.fromisoformat(_resources(bundle, "Patient")[0]["birthDate"])
        assert born > AS_OF.replace(year=AS_OF.year - 18)
        assert truth["outcome"] == "none" and truth["scope"]["reason"] == "under-18"


def test_early_relapse_after_adjuvant_tdm1_expects_tdxd() -> None:
    for _, truth in _cohort("early-relapse-tdm1", 8):
        tdm1 = [c for c in truth["early_setting"] if c["drug"] == "ado-trastuzumab emtansine"]
        assert tdm1 and not truth["lines"]
        gap = date.fromisoformat(truth["metastatic_since"]) - date.fromisoformat(tdm1[0]["end"])
        assert timedelta(0) < gap < timedelta(days=365)
        exp = truth["expected"]
        assert exp["early_relapse"] and exp["prior_her2_lines"] == 1 and exp["line"] == 1
        assert not {"thp", "tdm1"} & set(exp["acceptable_regimens"])  # CLINICAL.md 2.6
        if not exp["ild"]:
            assert "tdxd" in exp["acceptable_regimens"]


@pytest.mark.parametrize("shape", ["her2-discordance", "her2-conversion"])
def test_discordant_her2_is_written_with_its_specimen_and_expected_named(shape: str) -> None:
    for bundle, truth in _cohort(shape):
        record = build_record(bundle, as_of=AS_OF)
        specimens = {r.specimen for r in record.her2.results}
        assert Specimen.METASTATIC in specimens, "the metastatic biopsy must be readable"
        primary, metastatic = truth["her2"]["discordance"]
        if shape == "her2-conversion":
            assert (primary, metastatic) == ("negative", "positive")
            assert truth["her2"]["status"] == "positive"
            assert not {c["drug"] for c in truth["early_setting"]} & {
                "trastuzumab",
                "pertuzumab",
                "ado-trastuzumab emtansine",
            }
        else:
            assert (primary, metastatic) == ("positive", "negative")
        assert truth["outcome"] == "recommendation"
        assert "her2-discordance" in truth["warnings"]["required"]
    with_specimen = [
        b for b, _ in _cohort(shape, 8) if _resources(b, "Specimen")
    ]  # the Specimen resource shape is there too
    assert with_specimen


def test_pregnancy_is_coded_and_expects_the_critical_warning() -> None:
    for bundle, truth in _cohort("pregnancy", 8):
        pregnancy = any(
            k["code"] in ("77386006", "Z33.1")
            for c in _resources(bundle, "Condition")
            for k in c["code"].get("coding", [])
        )
        hcg = any(
            o["code"]["coding"][0]["code"] == "2106-3"
            and o["valueCodeableConcept"]["coding"][0]["code"] == "10828004"
            for o in _resources(bundle, "Observation")
        )
        assert pregnancy or hcg
        assert 18 <= truth["scope"]["age"] <= 45
        w = truth["warnings"]
        assert "pregnancy-her2" in w["required"] or "pregnancy-her2" in w["optional"]


def test_stale_record_has_no_data_in_the_last_18_months_and_expects_only_a_data_card() -> None:
    for bundle, truth in _cohort("stale"):
        newest = max(d for r in _resources(bundle) for d in _dates(r))
        assert (AS_OF - newest).days > round(18 * 30.4375)
        assert truth["outcome"] == "data-needed:stale-record" and truth["expected"] is None
        assert truth["warnings"] == {"required": {}, "optional": {}}


# -- the revised CLINICAL.md in the ground truth, on journeys written by hand --------------------


def _journey(
    lines: list[tuple[str, list[str], int, int]], metastatic_days: int = 1500, **kw: Any
) -> Journey:
    """A HER2-positive (IHC 3+ on a liver biopsy) metastatic journey; lines as (plan, drugs,
    start and end in days before AS_OF), each ended in progression."""
    j = Journey("hand-1", 0, AS_OF, "her2-metastatic", "female", date(1970, 5, 1), ("A", "B"))
    j.diagnosis = j.metastatic_since = AS_OF - timedelta(days=metastatic_days)
    j.de_novo, j.stage = True, "4"
    j.sites = [Event("liver", j.metastatic_since)]
    j.her2_tests = [Her2Test(j.metastatic_since, "ihc", "3+", "metastatic", "liver")]
    for n, (plan, drugs, start, end) in enumerate(lines, 1):
        s, e = AS_OF - timedelta(days=start), AS_OF - timedelta(days=end)
        j.lines.append(Line(n, plan, s, e, [Course(d, s, e) for d in drugs], e, "progression"))
    for key, value in kw.items():
        setattr(j, key, value)
    return j


THP = ("thp", ["docetaxel", "pertuzumab", "trastuzumab"], 1400, 900)
TRIPLET = ("tucatinib-trastuzumab-capecitabine", ["capecitabine", "trastuzumab", "tucatinib"])


def test_truth_never_skips_tdxd_after_thp_and_the_tucatinib_triplet() -> None:
    j = _journey([THP, (*TRIPLET, 850, 400)])
    exp = answer_of(j, 0)["expected"]
    assert exp["regimen"] == "tdxd" and exp["acceptable_regimens"] == ["tdxd"]


def test_truth_with_ild_never_offers_tdxd_and_gives_tdm1_its_place() -> None:
    j = _journey([THP, (*TRIPLET, 850, 400)])
    j.events.append(Event("ild-idiopathic", AS_OF - timedelta(days=300)))
    exp = answer_of(j, 0)["expected"]
    assert exp["regimen"] == "tdm1"
    assert not any("tdxd" in r for r in exp["acceptable_regimens"])


def test_truth_keeps_tdxd_ild_when_tdxd_was_stopped_for_ild() -> None:
    j = _journey([THP, ("tdxd", [TDXD], 850, 500)])
    j.lines[-1].progression, j.lines[-1].stop_reason = None, "pneumonitis"
    j.events.append(Event("ild-drug", AS_OF - timedelta(days=505), "resolved"))
    answer = answer_of(j, 0)
    assert "tdxd-ild" in answer["warnings"]["required"]
    assert not any("tdxd" in r for r in answer["expected"]["acceptable_regimens"])


@pytest.mark.parametrize(
    ("agent", "months_after", "early"),
    [
        ("ado-trastuzumab emtansine", 7, True),
        ("neratinib", 9, True),
        ("ado-trastuzumab emtansine", 20, False),
    ],
)
def test_truth_counts_early_relapse_after_tdm1_and_neratinib(
    agent: str, months_after: int, early: bool
) -> None:
    j = _journey([], 30, de_novo=False, stage="2A")
    assert j.metastatic_since is not None
    end = j.metastatic_since - timedelta(days=round(months_after * 30.4375))
    j.early = [
        Course("trastuzumab", end - timedelta(days=700), end - timedelta(days=400), "early"),
        Course(agent, end - timedelta(days=380), end, "early"),
    ]
    exp = answer_of(j, 0)["expected"]
    assert exp["early_relapse"] is early
    if early:
        assert exp["regimen"] == "tdxd" and exp["line"] == 1
    else:
        assert exp["regimen"] == "thp"


def test_truth_requires_the_pregnancy_warning_with_an_antibody_or_adc() -> None:
    j = _journey([THP])
    j.events.append(Event("pregnancy", AS_OF - timedelta(days=40)))
    answer = answer_of(j, 0)
    assert answer["expected"]["regimen"] == "tdxd"
    assert "pregnancy-her2" in answer["warnings"]["required"]
    j.events[-1].verification = "refuted"
    assert "pregnancy-her2" not in answer_of(j, 0)["warnings"]["required"]
