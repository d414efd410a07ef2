"""What the app holds for its requests, typed: one ServiceState, attached once by create_app and
read through `service_state(app)` (no string-keyed `app.extensions` lookups in the rooms)."""

from __future__ import annotations

from dataclasses import dataclass, field

import requests
from flask import Flask

from cds_service.config import Config
from cds_service.security.auth import Authenticator
from cds_service.storage.db import Database
from fhir_mappers import KnowledgeSet

_KEY = "her2cds"  # the one entry this service keeps in app.extensions


@dataclass
class Readiness:
    """What /readyz learned once and need not check again (the database has our tables)."""

    schema_ready: bool = False


@dataclass(frozen=True)
class ServiceState:
    """The service's parts: settings, the knowledge set it decides with, its database, the
    client authenticator (None unless HER2CDS_AUTH=required), the FHIR fallback's session."""

    config: Config
    knowledge: KnowledgeSet
    db: Database
    fhir_session: requests.Session
    auth: Authenticator | None = None
    readiness: Readiness = field(default_factory=Readiness)


def attach(app: Flask, state: ServiceState) -> None:
    """Attach the state to the app (create_app, once)."""
    app.extensions[_KEY] = state


def service_state(app: Flask) -> ServiceState:
    """The state create_app attached (RuntimeError if this app was not built by create_app)."""
    state = app.extensions.get(_KEY)
    if not isinstance(state, ServiceState):
        raise RuntimeError("not an app built by cds_service.create_app: no service state")
    return state
