"""Order checks: which warnings apply to draft orders, and what replacement fixes each."""

from __future__ import annotations

from engine.knowledge import Knowledge, load_knowledge
from engine.model import DraftOrder, OrderFinding, PatientRecord, Replacement
from engine.safety import override

TDXD = "fam-trastuzumab deruxtecan"
TDM1 = "ado-trastuzumab emtansine"


def _component(kb: Knowledge, regimen_id: str, drug: str) -> Replacement:
    comp = next(c for c in kb.regimens[regimen_id].regimen.components if c.drug == drug)
    label = f"{drug} {comp.dose} {comp.route} {comp.schedule}"
    return Replacement(drug=drug, label=label, component=comp)


def _ild_check(order: DraftOrder, record: PatientRecord, kb: Knowledge) -> OrderFinding | None:
    ild = record.conditions_of("ild")
    if order.drug != TDXD or not ild:
        return None
    return OrderFinding(
        rule="tdxd-ild",
        severity="critical",
        order_id=order.resource_id,
        summary="T-DXd ordered with interstitial lung disease on record: use T-DM1",
        detail=(
            f"Recorded: {', '.join(sorted({c.display for c in ild}))}. ILD/pneumonitis occurs in "
            "10.5-13.6% of patients on T-DXd (grade 5 in 2.2%); patients with pre-existing ILD "
            "were excluded from its trials. T-DM1 3.6 mg/kg q3w is the alternative."
        ),
        replacement=_component(kb, "tdm1", TDM1),
        source_ids=tuple(c.source_id for c in ild),
        evidence=tuple(kb.evidence[i] for i in ("tdxd-ild-pooled", "tdxd-label")),
        override_reasons=(
            override("ild-resolved", "ILD resolved / not drug-related, benefit outweighs risk"),
            override("pulmonology-cleared", "Cleared by pulmonology"),
        ),
    )


def _dose_check(order: DraftOrder, record: PatientRecord, kb: Knowledge) -> OrderFinding | None:
    doses = kb.parameters["doses"]
    if order.drug is None or order.drug not in doses or order.dose_value is None:
        return None
    expected = doses[order.drug]
    unit = (order.dose_unit or "").replace(" ", "").lower()
    if unit not in ("mg/kg", "mg/kg{body_weight}"):
        return None
    value = order.dose_value
    wrong = value > expected["value"] if order.drug == TDM1 else value != expected["value"]
    if not wrong:
        return None
    regimen = "tdxd" if order.drug == TDXD else "tdm1"
    drug = order.drug
    return OrderFinding(
        rule="dose-check",
        severity="warning",
        order_id=order.resource_id,
        summary=f"{order.drug} {value:g} mg/kg is not the breast-cancer dose ({expected['value']:g} mg/kg)",
        detail=f"The breast-cancer dose is {expected['value']:g} mg/kg q3w. {expected.get('note', '')}".strip(),
        replacement=_component(kb, regimen, drug),
        evidence=(kb.evidence["tdxd-label" if order.drug == TDXD else "tdm1-label"],),
        override_reasons=(override("dose-intended", "Dose is intended (documented reason)"),),
    )


_CHECKS = (_ild_check, _dose_check)


def check_orders(
    record: PatientRecord, orders: list[DraftOrder], kb: Knowledge | None = None
) -> list[OrderFinding]:
    """All findings on the given orders (each order checked against the patient's picture)."""
    knowledge = kb or load_knowledge()
    findings: list[OrderFinding] = []
    for order in orders:
        for check in _CHECKS:
            finding = check(order, record, knowledge)
            if finding is not None:
                findings.append(finding)
    return findings
