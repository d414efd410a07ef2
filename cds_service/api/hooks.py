"""Discovery and the hook endpoints (blueprint)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, g

from cds_service import pipeline
from cds_service.api import timeline
from cds_service.api.validation import parse_body, read_body, validate_request
from cds_service.config import Config
from cds_service.errors import NotFoundError
from cds_service.observability import logging_setup, metrics
from cds_service.observability.conformance import checked_after_response
from cds_service.prefetch.fhir_servers import FhirAccess, parse_patterns
from cds_service.prefetch.prefetch import resolve
from cds_service.responses import json_response
from cds_service.services import BY_ID, SERVICES, prefetch_templates
from cds_service.state import service_state
from cds_service.storage import card_rules
from cds_service.storage.after_response import free_after_response

bp = Blueprint("hooks", __name__)


def config() -> Config:
    return service_state(current_app).config


def fhir_access(cfg: Config) -> FhirAccess:
    """The FHIR servers this call may read: the configured ones, plus those the trusted-clients
    file lists for the client that called (when authentication is on)."""
    own: tuple[str, ...] = ()
    identity = g.get("her2cds_client")
    authenticator = service_state(current_app).auth
    if identity is not None and authenticator is not None:
        client = authenticator.clients.get(identity.iss)
        own = client.fhir_servers if client is not None else ()
    return FhirAccess(
        allowed=parse_patterns((*cfg.fhir_servers, *own)),
        tokenless=parse_patterns(cfg.open_fhir_servers),
        max_requests=cfg.fhir_max_requests,
    )


@bp.get("/cds-services")
def discovery() -> Response:
    """CDS Hooks discovery: the services, their hooks and prefetch templates."""
    version = service_state(current_app).knowledge.version
    return json_response({"services": [s.definition(version) for s in SERVICES]})


@bp.post("/cds-services/<service_id>")
def call_service(service_id: str) -> Response:
    """Answer one hook call with cards: validate, resolve prefetch, run the pipeline."""
    service = BY_ID.get(service_id)
    if service is None:
        raise NotFoundError(f"no CDS service with id {service_id!r}; see GET /cds-services")
    body = parse_body(read_body())
    validate_request(body, service.hook)
    state = service_state(current_app)
    cfg = state.config
    data = resolve(
        body,
        prefetch_templates(),
        budget_seconds=cfg.fhir_timeout,
        session=state.fhir_session,
        access=fhir_access(cfg),
    )
    context = body["context"]
    patient_id = str(context["patientId"])
    instance = str(body["hookInstance"])
    if service.hook == "patient-view":
        token = timeline.view_token(instance)  # names the picture the card's link opens
        with checked_after_response():
            result = pipeline.patient_view(
                data,
                instance=instance,
                patient_id=patient_id,
                jurisdiction=cfg.jurisdiction,
                timeline_url=timeline.link_for(patient_id, token),
                knowledge=state.knowledge,
            )
        caller = g.get("her2cds_client")
        timeline.remember(result.assessment.record, token, caller.iss if caller else None)
        _cards_sent(service.id, body, result.cards)
        free_after_response(body, data, result)
        return json_response({"cards": result.cards})
    with checked_after_response():
        orders = pipeline.order_check(
            data,
            context["draftOrders"],
            instance=instance,
            patient_id=patient_id,
            selections=context.get("selections") if service.hook == "order-select" else None,
            signing=service.hook == "order-sign",
            jurisdiction=cfg.jurisdiction,
            knowledge=state.knowledge,
        )
    _cards_sent(service.id, body, orders.cards)
    free_after_response(body, data, orders)
    return json_response({"cards": orders.cards})


def _cards_sent(service_id: str, body: dict[str, Any], cards: list[dict[str, Any]]) -> None:
    """What follows a hook response's cards: counted per rule, their rules kept for feedback,
    the call noted for its log line."""
    sent = [(str(card.get("uuid") or ""), *metrics.card_rule(card)) for card in cards]
    metrics.cards_emitted(service_id, sent)
    card_rules.remember(service_state(current_app).db, sent)
    logging_setup.note_hook(body, [rule for _, _, rule in sent])
