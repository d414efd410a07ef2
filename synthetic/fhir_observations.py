"""Observation resources: HER2 tests (IHC, ISH, interpretation), ER/PR, staging, restaging
(disease status) and the LVEF series."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from engine.code_systems import LOINC, SNOMED, UCUM
from synthetic.fhir_codes import (
    AJCC,
    BODY_SITES,
    IHC_ANSWERS,
    STAGES,
    STATUS,
    cc,
)
from synthetic.fhir_writer import Renderer
from synthetic.journey import Her2Test


def observation(r: Renderer, loinc: str, display: str, when: date, **value: Any) -> dict[str, Any]:
    return r.add(
        {
            "resourceType": "Observation",
            "status": "final",
            "code": cc(LOINC, loinc, display),
            "subject": r.subject,
            "effectiveDateTime": when.isoformat(),
            **value,
        },
        "obs",
    )


def her2_tests(r: Renderer) -> None:
    rng = r.rng
    for t in r.j.her2_tests:
        if t.method == "ihc":
            code, short, long = IHC_ANSWERS[t.result]
            value = (
                cc(LOINC, code, short)
                if rng.random() < 0.6
                else {"text": rng.choice([short, long])}
            )
            obs = observation(
                r,
                "85319-2",
                "HER2 [Presence] in Breast cancer specimen by Immune stain",
                t.when,
                valueCodeableConcept=value,
            )
        elif t.method == "ish":
            pos = t.result == "positive"
            choice = rng.random()
            if choice < 0.4:
                value = cc(
                    SNOMED,
                    "10828004" if pos else "260385009",
                    "Positive" if pos else "Negative",
                )
            elif choice < 0.7:
                value = cc(
                    LOINC, "LA6576-8" if pos else "LA6577-6", "Positive" if pos else "Negative"
                )
            else:
                value = {"text": "Amplified" if pos else "Not amplified"}
            obs = observation(
                r,
                "85318-4",
                "HER2 [Presence] in Breast cancer specimen by FISH",
                t.when,
                valueCodeableConcept=value,
            )
        else:
            pos = t.result in ("positive", "3+")
            code = rng.choice(["48676-1", "18474-7"])
            obs = observation(
                r,
                code,
                "HER2 [Interpretation] in Tissue",
                t.when,
                valueCodeableConcept=cc(
                    SNOMED,
                    "10828004" if pos else "260385009",
                    "Positive (qualifier value)" if pos else "Negative (qualifier value)",
                ),
            )
        site = BODY_SITES.get(t.site if t.specimen == "metastatic" else "breast")
        rebiopsied = any(x.specimen == "metastatic" for x in r.j.her2_tests)
        # when a metastasis was also tested, every report names its specimen (otherwise a
        # newer unlabelled primary result would make "which tumour?" unanswerable)
        t.site_written = False
        if t.specimen_resource and site:
            # the biopsy as a Specimen resource; half the reports name the site only there
            obs["specimen"] = {"reference": f"Specimen/{specimen(r, t, site)}"}
            if rng.random() < 0.5:
                obs["bodySite"] = cc(SNOMED, site[0], site[1])
            t.site_written = True
        elif site and (t.specimen == "metastatic" or rebiopsied or rng.random() < 0.6):
            obs["bodySite"] = cc(SNOMED, site[0], site[1])
            t.site_written = True
        if t.specimen == "metastatic" and "specimen" not in obs and rng.random() < 0.5:
            obs["specimen"] = {"display": f"Core biopsy of metastatic lesion ({t.site})"}


def specimen(r: Renderer, t: Her2Test, site: tuple[str, str]) -> str:
    """A Specimen resource for a biopsy (type, collection body site, date); returns its id."""
    metastatic = t.specimen == "metastatic"
    what = f"metastatic lesion ({t.site})" if metastatic else "primary breast tumour"
    res = r.add(
        {
            "resourceType": "Specimen",
            "type": {"text": "Core needle biopsy specimen"},
            "subject": r.subject,
            "collection": {
                "collectedDateTime": t.when.isoformat(),
                "bodySite": cc(SNOMED, site[0], site[1]),
            },
            "note": [{"text": f"Core biopsy of {what}"}],
        },
        "spec",
    )
    return str(res["id"])


def pregnancy_tests(r: Renderer) -> None:
    """A positive hCG (LOINC 2106-3 urine, CLINICAL.md section 1) for a pregnancy."""
    for ev in r.j.events:
        if ev.kind == "hcg-positive":
            observation(
                r,
                "2106-3",
                "Choriogonadotropin (pregnancy test) [Presence] in Urine",
                ev.onset,
                valueCodeableConcept=cc(SNOMED, "10828004", "Positive (qualifier value)"),
            )


def receptors(r: Renderer) -> None:
    j = r.j
    when = min((t.when for t in j.her2_tests), default=j.diagnosis)
    if when is None or j.cancer != "breast":
        return
    for name, positive in (("er", j.er_positive), ("pr", j.pr_positive)):
        if r.rng.random() < 0.5:
            code = "16112-5" if name == "er" else "16113-3"
            value = cc(
                SNOMED,
                "10828004" if positive else "260385009",
                "Positive (qualifier value)" if positive else "Negative (qualifier value)",
            )
        else:
            code = "85337-4" if name == "er" else "85339-0"
            value = cc(
                LOINC,
                "LA6576-8" if positive else "LA6577-6",
                "Positive" if positive else "Negative",
            )
        observation(r, code, f"{name.upper()} receptor", when, valueCodeableConcept=value)


def staging(r: Renderer) -> None:
    j = r.j
    if not j.stage or j.diagnosis is None:
        return
    code, disp = STAGES[j.stage]
    when = j.diagnosis + timedelta(days=3)
    value = {
        "coding": [
            {"system": SNOMED, "code": code, "display": f"{disp} (qualifier value)"},
            {"system": AJCC, "code": f"c{j.stage}"},
        ],
        "text": disp,
    }
    observation(r, "21908-9", "Stage group.clinical Cancer", when, valueCodeableConcept=value)
    m1 = j.stage == "4"
    m_value = {
        "coding": [
            {
                "system": SNOMED,
                "code": "55440008" if m1 else "30893008",
                "display": "M1 category (finding)" if m1 else "M0 category (finding)",
            },
            {"system": AJCC, "code": "cM1" if m1 else "cM0"},
        ],
        "text": "cM1" if m1 else "cM0",
    }
    if r.rng.random() < 0.7:
        observation(
            r,
            "21907-1",
            "Distant metastases.clinical [Class] Cancer",
            when,
            valueCodeableConcept=m_value,
        )


def assessments(r: Renderer) -> None:
    for when, status in r.j.assessments:
        code, disp = STATUS[status]
        observation(
            r,
            "97509-4",
            "Cancer disease progression",
            when,
            valueCodeableConcept=cc(SNOMED, code, disp),
        )


def lvef(r: Renderer) -> None:
    for when, value in r.j.lvef:
        observation(
            r,
            "10230-1",
            "Left ventricular Ejection fraction",
            when,
            valueQuantity={"value": value, "unit": "%", "system": UCUM, "code": "%"},
        )
