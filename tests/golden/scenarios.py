"""The clinical scenarios the card tests and goldens pin (CLINICAL.md sections 3 and 4).

Each scenario is a FHIR R4 Bundle built with tests.builders, with resource ids renumbered so the
cards' "Based on" ids do not depend on the order tests run in. All dates are fixed and every
scenario is evaluated at AS_OF, so the cards do not change with today's date.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from tests import builders as b

AS_OF = date(2026, 11, 1)
INSTANCE = "d2f1c9a0-6b1e-4a55-8d0c-golden000001"
TIMELINE_BASE = "https://cds.example.org"
TDXD_RXNORM = "2267576"  # a T-DXd product code seen in data (CLINICAL.md: UNVERIFIED)


@dataclass(frozen=True)
class Scenario:
    name: str
    hook: str
    bundle: dict[str, Any]
    patient_id: str
    drafts: dict[str, Any] | None = None
    selections: list[str] = field(default_factory=list)
    story: str = ""


def _renumber(bundle: dict[str, Any]) -> dict[str, Any]:
    for i, entry in enumerate(bundle["entry"]):
        res = entry["resource"]
        if res["resourceType"] != "Patient":
            res["id"] = f"{res['resourceType'].lower()}-{i}"
    return bundle


def _after_thp(pid: str, *extra: dict[str, Any]) -> dict[str, Any]:
    return _renumber(
        b.bundle(
            b.patient(pid),
            b.breast_cancer("2023-09-01", pid=pid),
            b.her2(True, "2023-09-10", pid=pid),
            b.er(True, "2023-09-10", pid=pid),
            b.metastasis(onset="2023-09-20", pid=pid),
            *b.thp("2023-10-05", "2025-11-20", pid=pid),
            b.progression("2025-11-15", pid=pid),
            b.lvef(64, "2023-09-25", pid=pid),
            b.lvef(58, "2024-06-10", pid=pid),
            b.lvef(61, "2025-10-01", pid=pid),
            *extra,
        )
    )


def _draft_tdxd(pid: str, rid: str, dose: float = 5.4) -> dict[str, Any]:
    order = b.request(
        TDXD_RXNORM,
        "fam-trastuzumab deruxtecan-nxki (Enhertu)",
        "2026-11-01",
        status="draft",
        intent="order",
        pid=pid,
        rid=rid,
        dose=(dose, "mg/kg"),
    )
    return {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": order}]}


def scenarios() -> dict[str, Scenario]:
    de_novo = _renumber(
        b.bundle(
            b.patient("denovo"),
            b.breast_cancer("2026-09-01", pid="denovo"),
            b.her2(True, "2026-09-10", pid="denovo"),
            b.er(False, "2026-09-10", pid="denovo"),
            b.metastasis(
                site_code="94222008",
                display="Secondary malignant neoplasm of bone",
                onset="2026-09-15",
                pid="denovo",
            ),
            b.lvef(63, "2026-09-20", pid="denovo"),
        )
    )
    ild_bundle = _after_thp("ild", b.ild("2021-06-01", pid="ild"))
    unknown = _renumber(
        b.bundle(
            b.patient("her2unk"),
            b.breast_cancer("2025-02-01", pid="her2unk"),
            b.metastasis(onset="2026-03-01", pid="her2unk"),
        )
    )
    no_blockade = _renumber(
        b.bundle(
            b.patient("noblock"),
            b.breast_cancer("2023-09-01", pid="noblock"),
            b.her2(True, "2023-09-10", pid="noblock"),
            b.metastasis(onset="2023-09-20", pid="noblock"),
            *b.thp("2023-10-05", "2025-03-01", pid="noblock"),
            b.progression("2025-02-20", pid="noblock"),
            b.statement(
                "194000", "capecitabine", "2025-03-10", "2027-03-01", status="active", pid="noblock"
            ),
            b.lvef(60, "2026-09-01", pid="noblock"),
        )
    )
    # Adjuvant trastuzumab, THP to progression, then T-DXd with pneumonitis and an LVEF drop:
    # the richest picture, also the README's timeline screenshot.
    on_tdxd_ild = _after_thp(
        "tdxdild",
        b.statement("224905", "trastuzumab", "2020-03-01", "2021-02-28", pid="tdxdild"),
        b.statement(TDXD_RXNORM, "fam-trastuzumab deruxtecan", "2025-12-01", pid="tdxdild"),
        b.ild("2026-06-01", pid="tdxdild"),
        b.lvef(52, "2026-03-01", pid="tdxdild"),
        b.lvef(47, "2026-07-15", pid="tdxdild"),
    )
    negative = _renumber(
        b.bundle(
            b.patient("neg"),
            b.breast_cancer("2022-01-01", pid="neg"),
            b.her2(False, "2022-01-10", pid="neg"),
            b.metastasis(onset="2023-01-01", pid="neg"),
        )
    )
    unstaged = _renumber(
        b.bundle(
            b.patient("nostage"),
            b.breast_cancer("2026-05-01", pid="nostage"),
            b.her2(True, "2026-05-10", pid="nostage"),
        )
    )
    after_thp = _after_thp("thp-prog")
    return {
        s.name: s
        for s in (
            Scenario("de_novo_thp", "patient-view", de_novo, "denovo", story="line 1: THP"),
            Scenario(
                "after_thp_tdxd", "patient-view", after_thp, "thp-prog", story="line 2: T-DXd"
            ),
            Scenario("ild_tdm1", "patient-view", ild_bundle, "ild", story="ILD: T-DM1, warning"),
            Scenario("her2_unknown", "patient-view", unknown, "her2unk", story="data needed"),
            Scenario("no_staging", "patient-view", unstaged, "nostage", story="staging needed"),
            Scenario(
                "order_select_tdxd_ild",
                "order-select",
                _after_thp("ild", b.ild("2021-06-01", pid="ild")),
                "ild",
                drafts=_draft_tdxd("ild", "draft-tdxd-1"),
                selections=["MedicationRequest/draft-tdxd-1"],
                story="T-DXd ordered with ILD: critical, replace with T-DM1",
            ),
            Scenario(
                "order_sign_tdxd_ild",
                "order-sign",
                _after_thp("ild", b.ild("2021-06-01", pid="ild")),
                "ild",
                drafts=_draft_tdxd("ild", "draft-tdxd-2"),
                story="T-DXd signed with ILD: critical",
            ),
            Scenario(
                "order_select_tdxd_dose",
                "order-select",
                after_thp,
                "thp-prog",
                drafts=_draft_tdxd("thp-prog", "draft-tdxd-3", dose=6.4),
                selections=["MedicationRequest/draft-tdxd-3"],
                story="T-DXd at the gastric dose: replace with 5.4 mg/kg",
            ),
            Scenario("no_blockade", "patient-view", no_blockade, "noblock", story="no HER2 agent"),
            Scenario("on_tdxd_with_ild", "patient-view", on_tdxd_ild, "tdxdild", story="T-DXd+ILD"),
            Scenario("her2_negative", "patient-view", negative, "neg", story="out of scope"),
        )
    }


GOLDEN = (
    "de_novo_thp",
    "after_thp_tdxd",
    "ild_tdm1",
    "her2_unknown",
    "order_select_tdxd_ild",
    "order_sign_tdxd_ild",
)
