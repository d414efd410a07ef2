"""What every order check sees: the patient, the knowledge, the order set, the recommendation."""

from __future__ import annotations

from dataclasses import dataclass

from engine.knowledge import Knowledge
from engine.model import DraftOrder, PatientRecord, Recommendation


def short_name(kb: Knowledge, drug: str) -> str:
    """The drug's short name (drugs.yaml `short`: "T-DXd"), else its id."""
    info = kb.drug(drug)
    return info.short if info and info.short else drug


def ild_replacement(kb: Knowledge) -> tuple[str, str]:
    """(regimen id, drug) offered instead of an ILD-excluded agent (agents.ild_replacement)."""
    repl = kb.parameters["agents"]["ild_replacement"]
    return str(repl["regimen"]), str(repl["drug"])


def own_regimen(kb: Knowledge, drug: str) -> str:
    """The regimen of this drug alone (regimens.yaml: "tdxd" for T-DXd), "" when there is none:
    what a one-click fix of a conjugate's order orders."""
    return next((rid for rid, r in kb.regimens.items() if r.regimen.drugs == (drug,)), "")


def drug_label(kb: Knowledge, drug: str) -> str:
    """The drug as cards name it: "fam-trastuzumab deruxtecan (T-DXd)"."""
    info = kb.drug(drug)
    return f"{drug} ({info.short})" if info and info.short else drug


@dataclass(frozen=True)
class OrderCtx:
    record: PatientRecord
    kb: Knowledge
    orders: tuple[DraftOrder, ...]
    rec: Recommendation | None

    def cls(self, drug: str | None) -> str:
        info = self.kb.drug(drug) if drug else None
        return info.drug_class if info else ""

    def others(self, order: DraftOrder) -> list[DraftOrder]:
        return [o for o in self.orders if o.resource_id != order.resource_id]
