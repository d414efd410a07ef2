"""FHIR R4 (and R4B/R5 shapes) to the engine's domain objects."""

from fhir_mappers.knowledge_set import KnowledgeSet, load_knowledge_set
from fhir_mappers.orders import draft_orders
from fhir_mappers.record import build_record
from fhir_mappers.resources import collect, iter_resources, warm_models
from fhir_mappers.terminology import load_terminology

__all__ = [
    "KnowledgeSet",
    "build_record",
    "collect",
    "draft_orders",
    "iter_resources",
    "load_knowledge_set",
    "load_terminology",
    "warm_models",
]
