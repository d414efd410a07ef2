"""The decision engine: domain model, knowledge base, next-line rules, warnings, order checks.

Pure: no HTTP, no FHIR models, no I/O but reading its own knowledge files.
"""

from engine.assess import assess
from engine.knowledge import Knowledge, KnowledgeError, load_knowledge
from engine.model import (
    Alert,
    Assessment,
    DraftOrder,
    OrderFinding,
    PatientRecord,
    Recommendation,
    TherapyLine,
)
from engine.orders import check_orders

__all__ = [
    "Alert",
    "Assessment",
    "DraftOrder",
    "Knowledge",
    "KnowledgeError",
    "OrderFinding",
    "PatientRecord",
    "Recommendation",
    "TherapyLine",
    "assess",
    "check_orders",
    "load_knowledge",
]
