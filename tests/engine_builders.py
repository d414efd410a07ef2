"""Builders for engine tests: FHIR stories through build_record, and PatientRecords built directly."""

from __future__ import annotations

from datetime import date
from typing import Any

from engine import Assessment, assess, load_knowledge
from engine.model import (
    ConditionFact,
    DraftOrder,
    Exposure,
    Measurement,
    PatientRecord,
    ReceptorAssessment,
    ReceptorResult,
    ReceptorStatus,
    Specimen,
    TherapyLine,
)
from fhir_mappers import build_record
from tests import builders as b

RX = {
    "trastuzumab": "224905",
    "pertuzumab": "1298944",
    "docetaxel": "72962",
    "paclitaxel": "56946",
    "carboplatin": "40048",
    "ado-trastuzumab emtansine": "1371041",
    "fam-trastuzumab deruxtecan": None,  # ingredient code UNVERIFIED: matched by name
    "tucatinib": None,
    "capecitabine": "194000",
    "lapatinib": "480167",
    "neratinib": "1940643",
    "letrozole": "72965",
    "doxorubicin": "3639",
    "vinorelbine": "39541",
}


def drug(name: str, start: str, end: str | None = None, **kw: Any) -> dict[str, Any]:
    """A MedicationStatement for one drug (coded where the code is verified, else by name)."""
    return b.statement(RX.get(name), name, start, end, **kw)


def regimen(names: list[str], start: str, end: str | None = None) -> list[dict[str, Any]]:
    return [drug(n, start, end) for n in names]


def her2_story(
    *resources: dict[str, Any],
    her2: bool | None = True,
    er: bool | None = False,
    met: str = "2021-01-01",
    site: tuple[str, str] | None = ("94381002", "Secondary malignant neoplasm of liver"),
) -> list[dict[str, Any]]:
    """A HER2-positive (or as given) breast cancer with metastatic disease from `met`."""
    out = [b.patient(), b.breast_cancer("2019-06-01")]
    if her2 is not None:
        out.append(b.her2(her2, when="2019-06-10"))
    if er is not None:
        out.append(b.er(er, when="2019-06-10"))
    if site is not None:
        out.append(b.metastasis(site[0], onset=met, display=site[1]))
    return [*out, *resources]


def assess_story(
    resources: list[dict[str, Any]], as_of: str, jurisdiction: str = "FDA"
) -> Assessment:
    record = build_record(b.bundle(*resources), as_of=date.fromisoformat(as_of))
    return assess(record, load_knowledge(), jurisdiction)


def record_of(resources: list[dict[str, Any]], as_of: str) -> PatientRecord:
    return build_record(b.bundle(*resources), as_of=date.fromisoformat(as_of))


def order(
    drug_id: str | None,
    text: str = "",
    *,
    rid: str = "MedicationRequest/draft-1",
    dose: tuple[float, str] | None = None,
    text_drug: str | None = None,
) -> DraftOrder:
    """A draft order as the mappers read it (engine API)."""
    kb = load_knowledge()
    info = kb.drug(drug_id) if drug_id else None
    return DraftOrder(
        resource_id=rid,
        drug=drug_id,
        drug_class=info.drug_class if info else None,
        text=text or (drug_id or ""),
        text_drug=text_drug,
        dose_value=dose[0] if dose else None,
        dose_unit=dose[1] if dose else None,
    )


# --- PatientRecords built directly (property tests) ------------------------------------------


def d(iso: str) -> date:
    return date.fromisoformat(iso)


def her2_assessment(
    status: ReceptorStatus, specimen: Specimen = Specimen.METASTATIC
) -> ReceptorAssessment:
    if status is ReceptorStatus.UNKNOWN:
        return ReceptorAssessment()
    result = ReceptorResult(status, d("2021-01-05"), "ihc", "Observation/her2", specimen=specimen)
    return ReceptorAssessment(status, result, (result,))


def direct_line(
    number: int,
    drugs: tuple[str, ...],
    start: date,
    end: date | None,
    progressed: bool,
) -> tuple[TherapyLine, list[Exposure]]:
    kb = load_knowledge()
    ids = tuple(f"MedicationStatement/l{number}-{i}" for i in range(len(drugs)))
    exps = [
        Exposure(dr, kb.drugs[dr].drug_class, start, end, (sid,))
        for dr, sid in zip(drugs, ids, strict=True)
    ]
    line = TherapyLine(
        number=number,
        start=start,
        end=end,
        drugs=tuple(sorted(drugs)),
        regimen_id=None,
        regimen_name=" + ".join(sorted(drugs)),
        ended_in_progression=progressed,
        stop_reason="progression" if progressed else None,
        source_ids=ids,
        her2_directed=any(kb.is_her2_directed(x) for x in drugs),
        progression_ids=(f"Observation/prog-{number}",) if progressed else (),
    )
    return line, exps


def direct_record(
    *,
    lines: list[tuple[TherapyLine, list[Exposure]]] = (),  # type: ignore[assignment]
    her2: ReceptorStatus = ReceptorStatus.POSITIVE,
    hr_positive: bool = False,
    ild: bool = False,
    brain: bool = False,
    extracranial: bool = True,
    as_of: date = date(2026, 1, 1),
) -> PatientRecord:
    conditions = []
    if ild:
        conditions.append(
            ConditionFact(
                "ild", "Interstitial lung disease", d("2020-05-01"), True, "Condition/ild"
            )
        )
    metastases = []
    if extracranial or not brain:
        metastases.append(
            ConditionFact(
                "metastasis", "Liver metastasis", d("2021-01-01"), True, "Condition/m", "liver"
            )
        )
    if brain:
        metastases.append(
            ConditionFact(
                "brain-metastasis",
                "Brain metastasis",
                d("2021-01-01"),
                True,
                "Condition/b",
                "brain",
            )
        )
    er = her2_assessment(ReceptorStatus.POSITIVE if hr_positive else ReceptorStatus.NEGATIVE)
    return PatientRecord(
        patient_id="p1",
        as_of=as_of,
        breast_cancer=(
            ConditionFact("breast-cancer", "Breast cancer", d("2020-01-01"), True, "Condition/bc"),
        ),
        her2=her2_assessment(her2),
        er=er,
        metastatic_since=d("2021-01-01"),
        metastatic_source_ids=("Condition/m",),
        metastases=tuple(metastases),
        conditions=tuple(conditions),
        lvef=(Measurement(60.0, "%", as_of, "Observation/lvef"),),
        exposures=tuple(e for _, exps in lines for e in exps),
        lines=tuple(ln for ln, _ in lines),
    )
