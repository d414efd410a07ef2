"""The compiled (jsonschema-rs) fast path of request validation never accepts a request the
jsonschema validators reject: it only makes accepting valid requests cheaper."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cds_service.api.validation import _fast_validators, _validators, validate_request
from cds_service.errors import BadRequestError

HOOKS = ("patient-view", "order-select", "order-sign")
ids = st.one_of(
    st.from_regex(r"[A-Za-z0-9\-\.]{1,64}", fullmatch=True),
    st.text(max_size=70),
    st.just("abc\n"),
    st.integers(),
)
refs = st.one_of(
    st.builds(lambda t, i: f"{t}/{i}", st.sampled_from(["Practitioner", "P1"]), ids), ids
)
bundles: st.SearchStrategy[Any] = st.one_of(
    st.fixed_dictionaries(
        {"resourceType": st.sampled_from(["Bundle", "Patient"])},
        optional={"entry": st.one_of(st.lists(st.just({}), max_size=2), st.just({}))},
    ),
    st.none(),
    st.lists(st.just({}), max_size=1),
)
contexts = st.one_of(
    st.fixed_dictionaries(
        {},
        optional={
            "userId": refs,
            "patientId": ids,
            "encounterId": ids,
            "selections": st.one_of(st.lists(refs, max_size=2), refs),
            "draftOrders": bundles,
        },
    ),
    st.none(),
    st.text(max_size=3),
)
auth = st.fixed_dictionaries(
    {},
    optional={
        "access_token": st.one_of(st.text(max_size=4), st.integers()),
        "token_type": st.just("Bearer"),
        "expires_in": st.one_of(st.integers(), st.text(max_size=2)),
    },
)
bodies = st.fixed_dictionaries(
    {},
    optional={
        "hook": st.one_of(st.sampled_from(HOOKS), st.text(max_size=3)),
        "hookInstance": st.one_of(st.text(max_size=8), st.integers()),
        "fhirServer": st.one_of(st.text(max_size=8), st.none()),
        "fhirAuthorization": auth,
        "context": contexts,
        "prefetch": st.one_of(st.none(), st.just({}), st.just([]), st.text(max_size=2)),
    },
)


def _python_accepts(body: dict[str, Any], hook: str) -> bool:
    envelope, per_hook = _validators()
    if next(iter(envelope.iter_errors(body)), None) is not None or body["hook"] != hook:
        return False
    return next(iter(per_hook[hook].iter_errors(body["context"])), None) is None


@settings(max_examples=300, deadline=None)
@given(body=bodies, hook=st.sampled_from(HOOKS))
def test_fast_path_agrees_with_jsonschema(body: dict[str, Any], hook: str) -> None:
    expected = _python_accepts(body, hook)
    try:
        validate_request(body, hook)
        accepted = True
    except BadRequestError:
        accepted = False
    assert accepted == expected


def test_fast_path_is_in_use_and_accepts_a_valid_request() -> None:
    fast = _fast_validators()
    assert fast is not None
    body = {
        "hook": "patient-view",
        "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
        "context": {"userId": "Practitioner/example", "patientId": "1288992"},
        "prefetch": {"patient": None},
    }
    assert fast[0].is_valid(body) and fast[1]["patient-view"].is_valid(body["context"])
    validate_request(body, "patient-view")
    with pytest.raises(BadRequestError, match="context"):
        validate_request({**body, "context": {"userId": "Practitioner/x"}}, "patient-view")
