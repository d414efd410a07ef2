"""Render a journey as one FHIR R4 Bundle, coded the way real EHRs code it.

Each patient gets one EHR "style" (statements, per-cycle orders, or per-dose administrations;
SNOMED, ICD-10 or both for problems; ingredient, product or brand text for drugs) and each
resource drifts from it now and then. Codes come from fhir_mappers/terminology/*.yaml and
CLINICAL.md; the rendering never changes what happened, only how it is written down.
"""

from __future__ import annotations

import random
import uuid
from datetime import date, timedelta
from typing import Any

from synthetic.journey import Course, Journey, catalogue

SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
UCUM = "http://unitsofmeasure.org"
AJCC = "http://cancerstaging.org"
INTENT_URL = "http://hl7.org/fhir/us/mcode/StructureDefinition/mcode-treatment-intent"
_NS = uuid.UUID("0b7c3f52-41d6-4f0e-9a7d-5d1e3c2b8a90")

# (SNOMED code, display, ICD-10-CM code, display); None where no code is used in that system.
CONDITIONS: dict[str, tuple[str | None, str, str | None, str]] = {
    "breast": (
        "254837009",
        "Malignant neoplasm of breast (disorder)",
        "C50.911",
        "Malignant neoplasm of unspecified site of right female breast",
    ),
    "breast-male": (
        "254837009",
        "Malignant neoplasm of breast (disorder)",
        "C50.921",
        "Malignant neoplasm of unspecified site of right male breast",
    ),
    "her2-positive": (
        "427685000",
        "Human epidermal growth factor 2 positive carcinoma of breast",
        None,
        "",
    ),
    "her2-negative": (
        "431396003",
        "Human epidermal growth factor 2 negative carcinoma of breast",
        None,
        "",
    ),
    "liver": (
        "94381002",
        "Secondary malignant neoplasm of liver",
        "C78.7",
        "Secondary malignant neoplasm of liver and intrahepatic bile duct",
    ),
    "lung": (
        "94391008",
        "Secondary malignant neoplasm of lung",
        "C78.00",
        "Secondary malignant neoplasm of unspecified lung",
    ),
    "bone": (
        "94222008",
        "Secondary malignant neoplasm of bone",
        "C79.51",
        "Secondary malignant neoplasm of bone",
    ),
    "brain": (
        "94225005",
        "Secondary malignant neoplasm of brain",
        "C79.31",
        "Secondary malignant neoplasm of brain",
    ),
    "lymph-node": (
        "128462008",
        "Secondary malignant neoplastic disease",
        "C77.3",
        "Secondary and unspecified malignant neoplasm of axilla and upper limb lymph nodes",
    ),
    "ild-drug": (
        "427046006",
        "Drug-induced pneumonitis",
        "J70.4",
        "Drug-induced interstitial lung disorders, unspecified",
    ),
    "ild-radiation": (
        "84004001",
        "Radiation pneumonitis",
        "J70.0",
        "Acute pulmonary manifestations due to radiation",
    ),
    "ild-idiopathic": (
        "233703007",
        "Interstitial lung disease",
        "J84.9",
        "Interstitial pulmonary disease, unspecified",
    ),
    "heart-failure": ("84114007", "Heart failure", "I50.9", "Heart failure, unspecified"),
    "hfref": (
        "703272007",
        "Heart failure with reduced ejection fraction",
        "I50.20",
        "Unspecified systolic (congestive) heart failure",
    ),
    "cardiomyopathy": ("85898001", "Cardiomyopathy", "I42.9", "Cardiomyopathy, unspecified"),
    "hypertension": (
        "38341003",
        "Hypertensive disorder",
        "I10",
        "Essential (primary) hypertension",
    ),
    "diabetes": (
        "44054006",
        "Diabetes mellitus type 2",
        "E11.9",
        "Type 2 diabetes mellitus without complications",
    ),
    "osteoporosis": (
        "64859006",
        "Osteoporosis",
        "M81.0",
        "Age-related osteoporosis without current pathological fracture",
    ),
    "hypothyroidism": ("40930008", "Hypothyroidism", "E03.9", "Hypothyroidism, unspecified"),
    "stomach": (
        "363349007",
        "Malignant tumor of stomach",
        "C16.9",
        "Malignant neoplasm of stomach, unspecified",
    ),
    "lung-cancer": (
        "363358000",
        "Malignant tumor of lung",
        "C34.90",
        "Malignant neoplasm of unspecified part of unspecified bronchus or lung",
    ),
    "colon": (
        "363406005",
        "Malignant tumor of colon",
        "C18.9",
        "Malignant neoplasm of colon, unspecified",
    ),
}
STAGES = {
    "1A": ("261634002", "Stage 1A"),
    "2A": ("261614003", "Stage 2A"),
    "2B": ("261615002", "Stage 2B"),
    "3A": ("261638004", "Stage 3A"),
    "3C": ("261640009", "Stage 3C"),
    "4": ("258228008", "Stage 4"),
}
BODY_SITES = {
    "breast": ("76752008", "Breast structure"),
    "liver": ("10200004", "Liver structure"),
    "lymph-node": ("59441001", "Structure of lymph node"),
    "bone": ("272673000", "Bone structure"),
    "lung": ("39607008", "Lung structure"),
}
IHC_ANSWERS = {
    "3+": ("LA11843-2", "3+", "Positive (3+)"),
    "2+": ("LA11842-4", "2+", "Equivocal (2+)"),
    "1+": ("LA11841-6", "1+", "Negative (1+)"),
    "0": ("LA6111-4", "0", "Negative (0)"),
}
STATUS = {
    "worsened": ("271299001", "Patient's condition worsened"),
    "improved": ("268910001", "Patient's condition improved"),
    "stable": ("359746009", "Patient's condition stable"),
}
_ORAL = {"oral"}


def _cc(system: str, code: str, display: str = "", text: str | None = None) -> dict[str, Any]:
    coding: dict[str, Any] = {"system": system, "code": code}
    if display:
        coding["display"] = display
    out: dict[str, Any] = {"coding": [coding]}
    if text or display:
        out["text"] = text or display
    return out


def _pick(rng: random.Random, shares: dict[str, Any]) -> str:
    x, acc = rng.random(), 0.0
    for key, share in shares.items():
        acc += float(share)
        if x < acc:
            return str(key)
    return str(next(reversed(shares)))


class Renderer:
    """Writes one journey's resources; ids are stable ("<patient>-<kind><n>")."""

    def __init__(self, journey: Journey, rng: random.Random) -> None:
        self.j = journey
        self.rng = rng
        coding = catalogue()["coding"]
        self.coding = coding
        self.med_style = _pick(rng, coding["medication_style"])
        self.med_code = _pick(rng, coding["medication_code"])
        self.cond_style = _pick(rng, coding["condition_code"])
        self.urn = rng.random() < float(coding["urn_uuid_references"])
        self.intent = rng.random() < float(coding["intent_extension"])
        self.entries: list[dict[str, Any]] = []
        self.counter = 0

    # -- plumbing -------------------------------------------------------------------------------
    def full_url(self, rtype: str, rid: str) -> str:
        return f"urn:uuid:{uuid.uuid5(_NS, f'{rtype}/{rid}')}"

    @property
    def subject(self) -> dict[str, str]:
        if self.urn:
            return {"reference": self.full_url("Patient", self.j.patient_id)}
        return {"reference": f"Patient/{self.j.patient_id}"}

    def add(self, resource: dict[str, Any], prefix: str) -> dict[str, Any]:
        self.counter += 1
        concept = resource.get("medicationCodeableConcept")
        if concept is not None and self.rng.random() < 0.1:
            # some EHRs point at a (contained) Medication instead of coding the drug inline
            del resource["medicationCodeableConcept"]
            resource["contained"] = [{"resourceType": "Medication", "id": "med", "code": concept}]
            resource["medicationReference"] = {"reference": "#med"}
        resource = {
            "resourceType": resource.pop("resourceType"),
            "id": f"{self.j.patient_id}-{prefix}{self.counter}",
            **resource,
        }
        self.entries.append(resource)
        return resource

    # -- patient and conditions ---------------------------------------------------------------
    def patient(self) -> None:
        j = self.j
        self.entries.append(
            {
                "resourceType": "Patient",
                "id": j.patient_id,
                "identifier": [{"system": "urn:her2cds:synthetic", "value": j.patient_id}],
                "name": [{"family": j.name[1], "given": [j.name[0]]}],
                "gender": j.sex,
                "birthDate": j.birth_date.isoformat(),
            }
        )

    def condition(
        self,
        key: str,
        onset: date,
        status: str = "active",
        verification: str = "confirmed",
        style: str | None = None,
    ) -> None:
        snomed, s_disp, icd, i_disp = CONDITIONS[key]
        style = style or self.cond_style
        if self.rng.random() < 0.1:
            style = self.rng.choice(["snomed", "icd10", "both"])
        if snomed is None:
            style = "icd10"
        if icd is None:
            style = "snomed"
        codings = []
        if style in ("snomed", "both") and snomed:
            codings.append({"system": SNOMED, "code": snomed, "display": s_disp})
        if style in ("icd10", "both") and icd:
            codings.append({"system": ICD10, "code": icd, "display": i_disp})
        text = s_disp if style != "icd10" else i_disp
        if key == "lymph-node":
            text = "Secondary malignant neoplasm of axillary lymph nodes"
        self.add(
            {
                "resourceType": "Condition",
                "clinicalStatus": _cc(
                    "http://terminology.hl7.org/CodeSystem/condition-clinical", status
                ),
                "verificationStatus": _cc(
                    "http://terminology.hl7.org/CodeSystem/condition-ver-status", verification
                ),
                "category": [
                    _cc(
                        "http://terminology.hl7.org/CodeSystem/condition-category",
                        "problem-list-item",
                        "Problem List Item",
                    )
                ],
                "code": {"coding": codings, "text": text},
                "subject": self.subject,
                "onsetDateTime": onset.isoformat(),
                "recordedDate": onset.isoformat(),
            },
            "cond",
        )

    def conditions(self) -> None:
        j = self.j
        if j.cancer == "breast" and j.diagnosis is not None:
            if j.her2_condition and self.rng.random() < 0.5:
                self.condition(f"her2-{j.her2_condition}", j.her2_condition_date or j.diagnosis)
            else:
                self.condition("breast-male" if j.sex == "male" else "breast", j.diagnosis)
                if j.her2_condition:
                    self.condition(
                        f"her2-{j.her2_condition}",
                        j.her2_condition_date or j.diagnosis,
                        style="snomed",
                    )
        elif j.diagnosis is not None:
            self.condition({"lung": "lung-cancer"}.get(j.cancer, j.cancer), j.diagnosis)
        for site in j.sites:
            self.condition(site.kind, site.onset, site.status, site.verification)
        for ev in j.events:
            self.condition(ev.kind, ev.onset, ev.status, ev.verification)

    # -- observations --------------------------------------------------------------------------
    def observation(self, loinc: str, display: str, when: date, **value: Any) -> dict[str, Any]:
        return self.add(
            {
                "resourceType": "Observation",
                "status": "final",
                "code": _cc(LOINC, loinc, display),
                "subject": self.subject,
                "effectiveDateTime": when.isoformat(),
                **value,
            },
            "obs",
        )

    def her2_tests(self) -> None:
        rng = self.rng
        for t in self.j.her2_tests:
            if t.method == "ihc":
                code, short, long = IHC_ANSWERS[t.result]
                value = (
                    _cc(LOINC, code, short)
                    if rng.random() < 0.6
                    else {"text": rng.choice([short, long])}
                )
                obs = self.observation(
                    "85319-2",
                    "HER2 [Presence] in Breast cancer specimen by Immune stain",
                    t.when,
                    valueCodeableConcept=value,
                )
            elif t.method == "ish":
                pos = t.result == "positive"
                choice = rng.random()
                if choice < 0.4:
                    value = _cc(
                        SNOMED,
                        "10828004" if pos else "260385009",
                        "Positive" if pos else "Negative",
                    )
                elif choice < 0.7:
                    value = _cc(
                        LOINC, "LA6576-8" if pos else "LA6577-6", "Positive" if pos else "Negative"
                    )
                else:
                    value = {"text": "Amplified" if pos else "Not amplified"}
                obs = self.observation(
                    "85318-4",
                    "HER2 [Presence] in Breast cancer specimen by FISH",
                    t.when,
                    valueCodeableConcept=value,
                )
            else:
                pos = t.result in ("positive", "3+")
                code = rng.choice(["48676-1", "18474-7"])
                obs = self.observation(
                    code,
                    "HER2 [Interpretation] in Tissue",
                    t.when,
                    valueCodeableConcept=_cc(
                        SNOMED,
                        "10828004" if pos else "260385009",
                        "Positive (qualifier value)" if pos else "Negative (qualifier value)",
                    ),
                )
            site = BODY_SITES.get(t.site if t.specimen == "metastatic" else "breast")
            rebiopsied = any(x.specimen == "metastatic" for x in self.j.her2_tests)
            # when a metastasis was also tested, every report names its specimen (otherwise a
            # newer unlabelled primary result would make "which tumour?" unanswerable)
            if site and (t.specimen == "metastatic" or rebiopsied or rng.random() < 0.6):
                obs["bodySite"] = _cc(SNOMED, site[0], site[1])
            if t.specimen == "metastatic" and rng.random() < 0.5:
                obs["specimen"] = {"display": f"Core biopsy of metastatic lesion ({t.site})"}

    def receptors(self) -> None:
        j = self.j
        when = min((t.when for t in j.her2_tests), default=j.diagnosis)
        if when is None or j.cancer != "breast":
            return
        for name, positive in (("er", j.er_positive), ("pr", j.pr_positive)):
            if self.rng.random() < 0.5:
                code = "16112-5" if name == "er" else "16113-3"
                value = _cc(
                    SNOMED,
                    "10828004" if positive else "260385009",
                    "Positive (qualifier value)" if positive else "Negative (qualifier value)",
                )
            else:
                code = "85337-4" if name == "er" else "85339-0"
                value = _cc(
                    LOINC,
                    "LA6576-8" if positive else "LA6577-6",
                    "Positive" if positive else "Negative",
                )
            self.observation(code, f"{name.upper()} receptor", when, valueCodeableConcept=value)

    def staging(self) -> None:
        j = self.j
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
        self.observation("21908-9", "Stage group.clinical Cancer", when, valueCodeableConcept=value)
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
        if self.rng.random() < 0.7:
            self.observation(
                "21907-1",
                "Distant metastases.clinical [Class] Cancer",
                when,
                valueCodeableConcept=m_value,
            )

    def assessments(self) -> None:
        for when, status in self.j.assessments:
            code, disp = STATUS[status]
            self.observation(
                "97509-4",
                "Cancer disease progression",
                when,
                valueCodeableConcept=_cc(SNOMED, code, disp),
            )

    def lvef(self) -> None:
        for when, value in self.j.lvef:
            self.observation(
                "10230-1",
                "Left ventricular Ejection fraction",
                when,
                valueQuantity={"value": value, "unit": "%", "system": UCUM, "code": "%"},
            )

    # -- medications ---------------------------------------------------------------------------
    def concept(self, drug: str, phesgo: bool = False) -> dict[str, Any]:
        rng = self.rng
        if phesgo:
            spec = catalogue()["phesgo"]
            text = rng.choice(spec["text"])
            if rng.random() < 0.5:
                return {"coding": [{"system": RXNORM, "code": spec["products"][0]}], "text": text}
            return {"text": text}
        info = catalogue()["drugs"][drug]
        style = (
            self.med_code if rng.random() > 0.15 else rng.choice(["ingredient", "product", "text"])
        )
        if style == "product" and not info["products"]:
            style = "ingredient"
        if style == "ingredient" and not info["ingredient"]:
            style = "product" if info["products"] else "text"
        if style == "ingredient":
            return _cc(RXNORM, info["ingredient"], drug, drug)
        brand = rng.choice(info["brands"])
        if style == "product":
            return {
                "coding": [{"system": RXNORM, "code": rng.choice(info["products"])}],
                "text": f"{brand} ({drug})" if drug not in brand else brand,
            }
        return {"text": rng.choice([brand, f"{brand} ({drug})" if drug not in brand else brand])}

    def _intent(self, course: Course) -> list[dict[str, Any]]:
        if not self.intent or course.setting == "supportive":
            return []
        code, disp = (
            ("373808002", "Curative - procedure intent")
            if course.setting == "early"
            else ("363676003", "Palliative - procedure intent")
        )
        return [{"url": INTENT_URL, "valueCodeableConcept": _cc(SNOMED, code, disp)}]

    def statement(
        self, course: Course, start: date, end: date | None, phesgo: bool, progression: bool
    ) -> None:
        j = self.j
        res: dict[str, Any] = {
            "resourceType": "MedicationStatement",
            "status": "active" if end is None else ("stopped" if progression else "completed"),
            "medicationCodeableConcept": self.concept(course.drug, phesgo),
            "subject": self.subject,
            "effectivePeriod": {
                "start": start.isoformat(),
                **({"end": end.isoformat()} if end else {}),
            },
            "dateAsserted": min(
                j.as_of,
                j.as_of - timedelta(days=self.rng.randint(1, 20))
                if end is None
                else end + timedelta(days=self.rng.randint(0, 14)),
            ).isoformat(),
        }
        if progression and self.rng.random() < 0.3:
            res["statusReason"] = [_cc(SNOMED, "266721009", "Absent response to treatment")]
        ext = self._intent(course)
        if ext:
            res["extension"] = ext
        self.add(res, "ms")

    def request(self, course: Course, when: date, active: bool, phesgo: bool) -> None:
        info = catalogue()["drugs"][course.drug]
        res: dict[str, Any] = {
            "resourceType": "MedicationRequest",
            "status": "active" if active else "completed",
            "intent": "order",
            "medicationCodeableConcept": self.concept(course.drug, phesgo),
            "subject": self.subject,
            "authoredOn": when.isoformat(),
        }
        if info["route"] in _ORAL:
            res["dispenseRequest"] = {
                "expectedSupplyDuration": {
                    "value": int(info["cycle_days"]),
                    "unit": "days",
                    "system": UCUM,
                    "code": "d",
                }
            }
        ext = self._intent(course)
        if ext:
            res["extension"] = ext
        self.add(res, "mr")

    def administration(self, course: Course, when: date, phesgo: bool) -> None:
        res: dict[str, Any] = {
            "resourceType": "MedicationAdministration",
            "status": "completed",
            "medicationCodeableConcept": self.concept(course.drug, phesgo),
            "subject": self.subject,
            "effectiveDateTime": when.isoformat(),
        }
        ext = self._intent(course)
        if ext:
            res["extension"] = ext
        self.add(res, "ma")

    def course(self, course: Course, progression: bool) -> None:
        style = self.med_style
        if self.rng.random() < 0.1:
            style = self.rng.choice(["statement", "request", "administration"])
        oral = catalogue()["drugs"][course.drug]["route"] in _ORAL
        if oral and style == "administration":
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
                self.statement(course, start, end, phesgo, progression and end == course.end)
                continue
            piece = Course(course.drug, start, end, course.setting)
            doses = piece.doses(self.j.as_of)
            for i, when in enumerate(doses):
                last_of_ongoing = end is None and i == len(doses) - 1
                if style == "administration":
                    self.administration(piece, when, phesgo)
                    if last_of_ongoing:  # the standing order of an ongoing course
                        self.request(piece, when, True, phesgo)
                else:
                    self.request(piece, when, last_of_ongoing, phesgo)

    def medications(self) -> None:
        j = self.j
        for c in j.early:
            self.course(c, False)
        for ln in j.lines:
            for c in ln.courses:
                # only a drug given up to the progression stopped for it (not a taxane that
                # ended its planned induction months before)
                ran_to_end = c.end is not None and ln.end is not None and (ln.end - c.end).days <= 7
                self.course(c, ln.progression is not None and ran_to_end)


def render(journey: Journey, seed: int) -> dict[str, Any]:
    """The Bundle for one journey (rendering draws from its own stream: same seed, same bytes)."""
    rng = random.Random(f"her2-cds-render:{seed}:{journey.index}")
    r = Renderer(journey, rng)
    r.patient()
    r.conditions()
    r.her2_tests()
    r.receptors()
    r.staging()
    r.assessments()
    r.lvef()
    r.medications()
    entries = []
    for res in r.entries:
        entries.append({"fullUrl": r.full_url(res["resourceType"], res["id"]), "resource": res})
    return {
        "resourceType": "Bundle",
        "id": journey.patient_id,
        "meta": {
            "tag": [
                {
                    "system": "urn:her2cds:synthetic",
                    "code": "synthetic",
                    "display": "Synthetic patient (her2-cds synth)",
                }
            ]
        },
        "type": "collection",
        "timestamp": f"{journey.as_of.isoformat()}T00:00:00Z",
        "entry": entries,
    }
