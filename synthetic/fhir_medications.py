"""Medication resources: each course as statements, per-cycle requests or per-dose
administrations, with the drug coded by ingredient, product or brand text (Phesgo included)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from engine.code_systems import RXNORM, SNOMED, UCUM
from synthetic.fhir_codes import INTENT_URL, ORAL, cc
from synthetic.fhir_writer import Renderer
from synthetic.journey import Course, catalogue


def drug_concept(r: Renderer, drug: str, phesgo: bool = False) -> dict[str, Any]:
    rng = r.rng
    if phesgo:
        spec = catalogue()["phesgo"]
        text = rng.choice(spec["text"])
        if rng.random() < 0.5:
            return {"coding": [{"system": RXNORM, "code": spec["products"][0]}], "text": text}
        return {"text": text}
    info = catalogue()["drugs"][drug]
    style = r.med_code if rng.random() > 0.15 else rng.choice(["ingredient", "product", "text"])
    if style == "product" and not info["products"]:
        style = "ingredient"
    if style == "ingredient" and not info["ingredient"]:
        style = "product" if info["products"] else "text"
    if style == "ingredient":
        return cc(RXNORM, info["ingredient"], drug, drug)
    brand = rng.choice(info["brands"])
    if style == "product":
        return {
            "coding": [{"system": RXNORM, "code": rng.choice(info["products"])}],
            "text": f"{brand} ({drug})" if drug not in brand else brand,
        }
    return {"text": rng.choice([brand, f"{brand} ({drug})" if drug not in brand else brand])}


def intent_extension(r: Renderer, course: Course) -> list[dict[str, Any]]:
    if not r.intent or course.setting == "supportive":
        return []
    code, disp = (
        ("373808002", "Curative - procedure intent")
        if course.setting == "early"
        else ("363676003", "Palliative - procedure intent")
    )
    return [{"url": INTENT_URL, "valueCodeableConcept": cc(SNOMED, code, disp)}]


def statement(
    r: Renderer, course: Course, start: date, end: date | None, phesgo: bool, progression: bool
) -> None:
    j = r.j
    res: dict[str, Any] = {
        "resourceType": "MedicationStatement",
        "status": "active" if end is None else ("stopped" if progression else "completed"),
        "medicationCodeableConcept": drug_concept(r, course.drug, phesgo),
        "subject": r.subject,
        "effectivePeriod": {
            "start": start.isoformat(),
            **({"end": end.isoformat()} if end else {}),
        },
        "dateAsserted": min(
            j.record_date,
            j.record_date - timedelta(days=r.rng.randint(1, 20))
            if end is None
            else end + timedelta(days=r.rng.randint(0, 14)),
        ).isoformat(),
    }
    if progression and r.rng.random() < 0.3:
        res["statusReason"] = [cc(SNOMED, "266721009", "Absent response to treatment")]
    ext = intent_extension(r, course)
    if ext:
        res["extension"] = ext
    r.add(res, "ms")


def request(r: Renderer, course: Course, when: date, active: bool, phesgo: bool) -> None:
    info = catalogue()["drugs"][course.drug]
    res: dict[str, Any] = {
        "resourceType": "MedicationRequest",
        "status": "active" if active else "completed",
        "intent": "order",
        "medicationCodeableConcept": drug_concept(r, course.drug, phesgo),
        "subject": r.subject,
        "authoredOn": when.isoformat(),
    }
    if info["route"] in ORAL:
        res["dispenseRequest"] = {
            "expectedSupplyDuration": {
                "value": int(info["cycle_days"]),
                "unit": "days",
                "system": UCUM,
                "code": "d",
            }
        }
    ext = intent_extension(r, course)
    if ext:
        res["extension"] = ext
    r.add(res, "mr")


def administration(r: Renderer, course: Course, when: date, phesgo: bool) -> None:
    res: dict[str, Any] = {
        "resourceType": "MedicationAdministration",
        "status": "completed",
        "medicationCodeableConcept": drug_concept(r, course.drug, phesgo),
        "subject": r.subject,
        "effectiveDateTime": when.isoformat(),
    }
    ext = intent_extension(r, course)
    if ext:
        res["extension"] = ext
    r.add(res, "ma")


def course_resources(r: Renderer, course: Course, progression: bool) -> None:
    style = r.med_style
    if r.rng.random() < 0.1:
        style = r.rng.choice(["statement", "request", "administration"])
    oral = catalogue()["drugs"][course.drug]["route"] in ORAL
    admin_only = r.j.shape == "admin-only-ongoing"
    if admin_only:
        style = "administration"  # every dose (and oral fill) an administration, no order
    elif oral and style == "administration":
        style = "request"
    parts: list[tuple[date, date | None, bool]] = [(course.start, course.end, False)]
    if course.phesgo_from is not None:
        parts = [
            (course.start, course.phesgo_from - timedelta(days=21), False),
            (course.phesgo_from, course.end, True),
        ]
    for start, end, phesgo in parts:
        if phesgo and course.drug == "pertuzumab":
            continue  # one Phesgo resource per dose names both antibodies
        if style == "statement":
            # only the part that ran up to the progression carries "no response"
            statement(r, course, start, end, phesgo, progression and end == course.end)
            continue
        piece = Course(course.drug, start, end, course.setting)
        if end is None:
            piece.last_dose = course.last_dose
        doses = piece.doses(r.j.record_date)
        for i, when in enumerate(doses):
            last_of_ongoing = end is None and i == len(doses) - 1
            if style == "administration":
                administration(r, piece, when, phesgo)
                if last_of_ongoing and not admin_only:  # the standing order of an ongoing course
                    request(r, piece, when, True, phesgo)
            else:
                request(r, piece, when, last_of_ongoing, phesgo)


def medications(r: Renderer) -> None:
    j = r.j
    for c in j.early:
        course_resources(r, c, False)
    for ln in j.lines:
        for c in ln.courses:
            # only a drug given up to the progression stopped for it (not a taxane that
            # ended its planned induction months before)
            ran_to_end = c.end is not None and ln.end is not None and (ln.end - c.end).days <= 7
            course_resources(r, c, ln.progression is not None and ran_to_end)
