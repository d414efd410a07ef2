"""Negated and uncertain text is not a fact (CLINICAL.md section 1; NegEx, Chapman et al. 2001).

Real FHIR Conditions and Observations through build_record and assess.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.assess import assess
from engine.model import PatientRecord, ReceptorStatus, Specimen
from fhir_mappers import build_record
from fhir_mappers.terminology import TERMINOLOGY_DIR, load_terminology, normalise_text
from tests import builders as b

AS_OF = date(2022, 7, 1)
TERM = load_terminology()
NEGATION = yaml.safe_load((TERMINOLOGY_DIR / "negation.yaml").read_text(encoding="utf-8"))
ILD_TERMS = next(
    c["text"]
    for c in yaml.safe_load((TERMINOLOGY_DIR / "conditions.yaml").read_text(encoding="utf-8"))[
        "concepts"
    ]
    if c["concept"] == "ild"
)


def text_condition(text: str, onset: str = "2021-03-01", **kw: Any) -> dict[str, Any]:
    """A Condition known only by its text (no standard code), as many EHR problem lists send."""
    cond = b.condition("x", text, onset, **kw)
    cond["code"] = {"text": text}
    return cond


def after_thp(*extra: dict[str, Any]) -> list[dict[str, Any]]:
    """HER2+ metastatic since 2021, THP until progression in 2022: T-DXd is due (line 2)."""
    return [
        b.patient(),
        b.breast_cancer(),
        b.her2(),
        b.metastasis(onset="2021-01-01"),
        *b.thp("2021-02-01", "2022-06-01"),
        b.progression("2022-06-01"),
        *extra,
    ]


def picture(*resources: dict[str, Any]) -> PatientRecord:
    return build_record(b.bundle(*resources), as_of=AS_OF)


def preferred(rec: PatientRecord) -> str:
    a = assess(rec)
    assert a.recommendation is not None
    return a.recommendation.preferred.regimen.id


def issues(rec: PatientRecord) -> str:
    return " | ".join(i.message for i in rec.data_issues)


# -- conditions known by text -----------------------------------------------------------------
def test_no_evidence_of_metastatic_disease_is_not_metastatic() -> None:
    rec = picture(
        b.patient(),
        b.breast_cancer(),
        b.her2(),
        text_condition("No evidence of metastatic disease"),
    )
    assert not rec.metastatic and not rec.metastases
    assert assess(rec).recommendation is None


def test_affirmed_metastatic_text_still_is() -> None:
    rec = picture(b.patient(), b.breast_cancer(), b.her2(), text_condition("Metastatic disease"))
    assert rec.metastatic


def test_pneumonitis_ruled_out_is_no_ild_and_tdxd_stays_preferred() -> None:
    rec = picture(*after_thp(text_condition("Pneumonitis ruled out")))
    assert not rec.conditions_of("ild")
    assert preferred(rec) == "tdxd"


def test_history_of_pneumonitis_is_ild() -> None:
    rec = picture(*after_thp(text_condition("History of pneumonitis")))
    assert rec.conditions_of("ild")
    assert preferred(rec) == "tdm1"


def test_possible_pneumonitis_is_not_counted_but_said() -> None:
    rec = picture(*after_thp(text_condition("Possible pneumonitis")))
    assert not rec.conditions_of("ild")
    assert re.search(
        r'"Possible pneumonitis" in text: uncertain, not counted as interstitial lung disease',
        issues(rec),
    )


def test_suspected_brain_metastasis_is_not_active_brain_mets_but_said() -> None:
    rec = picture(*after_thp(text_condition("suspected brain metastasis")))
    assert not rec.active_brain_metastases
    assert not any(m.concept == "brain-metastasis" for m in rec.metastases)
    assert "not counted as brain metastasis" in issues(rec)


def test_a_pseudo_trigger_does_not_negate() -> None:
    rec = picture(*after_thp(text_condition("No increase in pneumonitis since March")))
    assert rec.conditions_of("ild")


def test_cannot_be_ruled_out_is_uncertain_not_negated() -> None:
    rec = picture(*after_thp(text_condition("Drug-induced pneumonitis cannot be ruled out")))
    assert not rec.conditions_of("ild")
    assert "uncertain, not counted as interstitial lung disease" in issues(rec)


def test_a_negation_outside_the_window_or_sentence_does_not_reach_the_term() -> None:
    far = "No fever reported at the visit of last week; pneumonitis on CT"
    assert picture(*after_thp(text_condition(far))).conditions_of("ild")
    far = "No fever, cough, chills, night sweats or weight loss reported, pneumonitis on CT"
    assert picture(*after_thp(text_condition(far))).conditions_of("ild")


def test_termination_term_ends_the_negation() -> None:
    rec = picture(*after_thp(text_condition("No fever but pneumonitis on CT")))
    assert rec.conditions_of("ild")


# -- coded verification status decides over text ------------------------------------------------
def test_coded_ild_refuted_is_no_ild() -> None:
    rec = picture(*after_thp(b.condition("233703007", "ILD", verification="refuted")))
    assert not rec.conditions_of("ild")
    assert preferred(rec) == "tdxd"


def test_provisional_ild_counts_and_is_stated_unconfirmed() -> None:
    rec = picture(*after_thp(b.condition("233703007", "ILD", verification="provisional")))
    (ild,) = rec.conditions_of("ild")
    assert ild.verification == "provisional"
    assert "(unconfirmed)" in ild.display
    assert preferred(rec) == "tdm1"
    alerts = [a for a in assess(rec).alerts if a.rule == "tdxd-ild"]
    assert alerts and "(unconfirmed)" in alerts[0].detail


def test_confirmed_ild_is_not_called_unconfirmed() -> None:
    (ild,) = picture(*after_thp(b.ild())).conditions_of("ild")
    assert ild.verification == "" and "unconfirmed" not in ild.display


def test_coded_ild_whose_text_rules_it_out_counts_unconfirmed_and_is_said() -> None:
    cond = b.condition("205237003", "Pneumonitis ruled out", verification=None)
    rec = picture(*after_thp(cond))
    (ild,) = rec.conditions_of("ild")
    assert ild.verification == "unconfirmed"
    assert "reads negated: counted as unconfirmed" in issues(rec)


def test_coded_confirmed_ild_whose_text_rules_it_out_counts_and_is_said() -> None:
    rec = picture(*after_thp(b.condition("205237003", "Pneumonitis ruled out")))
    (ild,) = rec.conditions_of("ild")
    assert ild.verification == ""
    assert "reads negated: counted, as coded confirmed" in issues(rec)


def test_coded_metastasis_whose_text_negates_it_is_not_counted_and_is_said() -> None:
    cond = b.condition("128462008", "No evidence of metastatic disease", verification=None)
    rec = picture(b.patient(), b.breast_cancer(), b.her2(), cond)
    assert not rec.metastatic
    assert "reads negated: not counted" in issues(rec)


# -- observations ------------------------------------------------------------------------------
def _her2_text(value: str) -> dict[str, Any]:
    o = b.observation("48676-1", when="2020-01-10")
    o.pop("valueCodeableConcept", None)
    o["valueString"] = value
    return o


def test_negated_or_doubted_her2_text_is_not_positive() -> None:
    for value in ("not positive", "Positive?", "possibly positive", "? positive"):
        rec = picture(b.patient(), b.breast_cancer(), _her2_text(value))
        assert rec.her2.status is ReceptorStatus.UNKNOWN, value
    for value, status in (
        ("Positive (3+)", ReceptorStatus.POSITIVE),
        ("No amplification detected: negative", ReceptorStatus.NEGATIVE),
        ("not amplified", ReceptorStatus.NEGATIVE),
    ):
        assert picture(b.patient(), _her2_text(value)).her2.status is status, value


def test_specimen_text_negating_metastasis_is_the_primary() -> None:
    o = b.her2()
    o["specimen"] = {"display": "Breast core biopsy, no evidence of metastasis"}
    (result,) = picture(b.patient(), b.breast_cancer(), o).her2.results
    assert result.specimen is Specimen.PRIMARY
    o["specimen"] = {"display": "Liver metastasis core biopsy"}
    (result,) = picture(b.patient(), b.breast_cancer(), o).her2.results
    assert result.specimen is Specimen.METASTATIC


# -- medication text ---------------------------------------------------------------------------
def test_negated_medication_text_is_no_exposure() -> None:
    given_ = picture(b.patient(), b.statement(None, "Trastuzumab 440 mg", "2021-02-01"))
    assert [e.drug for e in given_.exposures] == ["trastuzumab"]
    for text in ("no trastuzumab", "Trastuzumab declined", "? trastuzumab"):
        rec = picture(b.patient(), b.statement(None, text, "2021-02-01"))
        assert not rec.exposures, text


# -- properties --------------------------------------------------------------------------------
_FILLER = st.sampled_from(["recent", "acute", "mild", "grade 2", "drug-induced", "bilateral"])


@settings(max_examples=150, deadline=None)
@given(
    trigger=st.sampled_from(NEGATION["pre_negation"]),
    filler=st.lists(_FILLER, max_size=2),
    term=st.sampled_from(ILD_TERMS),
    upper=st.booleans(),
)
def test_a_pre_negation_trigger_before_an_ild_term_never_yields_ild(
    trigger: str, filler: list[str], term: str, upper: bool
) -> None:
    text = " ".join([trigger, *filler, term])
    rec = picture(b.patient(), text_condition(text.upper() if upper else text.capitalize()))
    assert not rec.conditions_of("ild"), text


@settings(max_examples=150, deadline=None)
@given(
    trigger=st.sampled_from(NEGATION["pre_negation"] + NEGATION["pre_uncertain"]),
    entry=st.sampled_from(TERM.medications),
    data=st.data(),
)
def test_a_negated_or_doubted_drug_name_is_no_drug(trigger: str, entry: Any, data: Any) -> None:
    name = data.draw(st.sampled_from(entry.names))
    text = f"{trigger} {name}"
    assert TERM.match_medication_text(text) is None, text
    assert TERM.match_medication_text(name) == entry.drugs, name  # the name alone names it


def _old_match_medication_text(text: str) -> tuple[str, ...] | None:
    """The former matcher: one regular expression per drug name (the reference)."""

    def has(t: str, phrase: str) -> bool:
        return re.search(r"(?<![a-z0-9])" + re.escape(phrase) + r"(?![a-z0-9])", t) is not None

    norm, raw = normalise_text(text), text.lower()
    for entry in TERM.medications:
        if any(has(norm, n) or has(raw, n) for n in entry.names) or any(
            all(has(norm, n) for n in group) for group in entry.names_all
        ):
            return entry.drugs
    return None


_NAMES = sorted(
    {n for e in TERM.medications for n in (*e.names, *(x for g in e.names_all for x in g))}
)
_PIECES = st.one_of(
    st.sampled_from(_NAMES),
    st.sampled_from(_NAMES).map(str.upper),
    st.sampled_from(
        ["100 MG", "Injection", "-dkst", "IV", "and", "+", "/", "®", "x", "kit", "5.4"]
    ),
    st.text(alphabet="abcdez -/+.", max_size=6),
)


@settings(max_examples=400, deadline=None)
@given(st.lists(_PIECES, max_size=8), st.sampled_from([" ", "", "-", "/", ", "]))
def test_the_combined_pattern_finds_what_one_regex_per_name_found(
    pieces: list[str], sep: str
) -> None:
    """Without negation or uncertainty words, the one-pass matcher names the same drugs."""
    text = sep.join(pieces)
    triggers = TERM.negation.triggers.search(text.lower())
    if triggers is None:
        assert TERM.match_medication_text(text) == _old_match_medication_text(text), text
