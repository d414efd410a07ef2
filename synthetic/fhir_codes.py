"""The codes the synthetic FHIR is written with: the problem-list, staging, body-site, HER2
and response codes, and the CodeableConcept helper (the code systems: engine.code_systems).

Codes come from fhir_mappers/terminology/*.yaml and CLINICAL.md.
"""

from __future__ import annotations

from typing import Any

AJCC = "http://cancerstaging.org"
INTENT_URL = "http://hl7.org/fhir/us/mcode/StructureDefinition/mcode-treatment-intent"


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
    "pregnancy": ("77386006", "Pregnancy", "Z33.1", "Pregnant state, incidental"),
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
ORAL = {"oral"}


def cc(system: str, code: str, display: str = "", text: str | None = None) -> dict[str, Any]:
    coding: dict[str, Any] = {"system": system, "code": code}
    if display:
        coding["display"] = display
    out: dict[str, Any] = {"coding": [coding]}
    if text or display:
        out["text"] = text or display
    return out
