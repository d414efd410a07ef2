"""What every order check sees: the patient, the knowledge, the order set, the recommendation."""

from __future__ import annotations

from dataclasses import dataclass

from engine.knowledge import Knowledge
from engine.model import DraftOrder, PatientRecord, Recommendation

TDXD = "fam-trastuzumab deruxtecan"
TDM1 = "ado-trastuzumab emtansine"
ADC_REGIMEN = {TDXD: "tdxd", TDM1: "tdm1"}


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
