"""Property-based: whatever story a record tells, every card keeps the card rules (summary under
140 characters, no empty fields, uuids unique, at most one recommended suggestion, Markdown only).
"""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cards.common import compact, uuid5
from cds_service import pipeline
from engine import load_knowledge
from tests import builders as b
from tests.golden.checks import check_response

AS_OF = date(2026, 11, 1)
VERSION = load_knowledge().version
# (rxnorm, text) of drugs a line may contain, including long and unusual names
DRUGS = [
    ("1298944", "pertuzumab"),
    ("224905", "trastuzumab"),
    ("72962", "docetaxel"),
    ("2267576", "fam-trastuzumab deruxtecan"),
    ("1371041", "ado-trastuzumab emtansine"),
    ("194000", "capecitabine"),
    (None, "tucatinib"),
    ("480167", "lapatinib"),
    ("1940643", "neratinib"),
    ("39541", "vinorelbine"),
    ("72965", "letrozole"),
    ("3639", "doxorubicin"),
]


@st.composite
def stories(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any]]:
    pid = "prop"
    start = date(2022, 1, 1) + timedelta(days=draw(st.integers(0, 600)))
    res: list[dict[str, Any]] = [
        b.patient(pid),
        b.breast_cancer("2021-06-01", pid=pid),
        b.metastasis(onset=start.isoformat(), pid=pid),
    ]
    her2 = draw(st.sampled_from(["positive", "negative", "missing"]))
    if her2 != "missing":
        res.append(b.her2(her2 == "positive", "2021-06-10", pid=pid))
    if draw(st.booleans()):
        res.append(b.er(True, "2021-06-10", pid=pid))
    if draw(st.booleans()):
        res.append(b.ild(draw(st.sampled_from(["2020-01-01", "2025-06-01"])), pid=pid))
    day = start + timedelta(days=10)
    for _ in range(draw(st.integers(0, 4))):
        length = draw(st.integers(30, 500))
        end = day + timedelta(days=length)
        ongoing = end > AS_OF
        for rx, text in draw(st.lists(st.sampled_from(DRUGS), min_size=1, max_size=3, unique=True)):
            res.append(
                b.statement(
                    rx, text, day.isoformat(), None if ongoing else end.isoformat(), pid=pid
                )
            )
        if not ongoing and draw(st.booleans()):
            res.append(b.progression((end - timedelta(days=5)).isoformat(), pid=pid))
        day = end + timedelta(days=draw(st.integers(5, 200)))
        if day > AS_OF:
            break
    for k in range(draw(st.integers(0, 3))):
        res.append(b.lvef(draw(st.integers(25, 70)), f"202{3 + k}-05-01", pid=pid))
    rx, text = draw(st.sampled_from(DRUGS))
    draft = b.request(
        rx,
        text,
        "2026-11-01",
        status="draft",
        pid=pid,
        rid="d1",
        dose=(draw(st.sampled_from([3.6, 5.4, 6.4, 8.0])), "mg/kg"),
    )
    return b.bundle(*res), b.bundle(draft)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stories())
def test_every_card_keeps_the_rules_whatever_the_story(
    story: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    bundle, drafts = story
    pv = pipeline.patient_view(
        bundle,
        instance="prop",
        patient_id="prop",
        as_of=AS_OF,
        timeline_url="https://cds.example.org/timeline/prop?view=t",
    )
    check_response(pv.cards, VERSION)
    for signing in (False, True):
        oc = pipeline.order_check(
            bundle,
            drafts,
            instance="prop",
            patient_id="prop",
            selections=None if signing else ["MedicationRequest/d1"],
            signing=signing,
            as_of=AS_OF,
        )
        check_response(oc.cards, VERSION)
        for card in oc.cards:
            for s in card.get("suggestions", []):
                types = [a["type"] for a in s["actions"]]
                if s["label"].startswith("Add "):
                    # the fix adds the missing drug beside the draft, which stays
                    assert set(types) == {"create"}
                    continue
                # create first, then delete (issue 19: clients applying only the first action)
                assert types[0] == "create" and "delete" in types
                assert types == sorted(types)  # every create before any delete
                assert {
                    "type": "delete",
                    "description": "Remove the draft order MedicationRequest/d1",
                    "resourceId": "MedicationRequest/d1",
                } in s["actions"]


_LEAVES = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.sampled_from(["", "  ", "a", " b "])
    | st.text(max_size=4)
    | st.tuples(st.integers())
)
_TREES = st.recursive(
    _LEAVES,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=3), inner, max_size=4)
    ),
    max_leaves=30,
)


def _empty_anywhere(value: Any) -> bool:
    if isinstance(value, dict):
        return any(v in (None, "", [], {}) or _empty_anywhere(v) for v in value.values())
    if isinstance(value, list):
        return any(v in (None, "", [], {}) or _empty_anywhere(v) for v in value)
    return False


def _meaning(value: Any) -> Any:
    """What compact must keep: every non-empty leaf (strings stripped), by its path."""
    if isinstance(value, dict):
        return {k: m for k, v in value.items() if (m := _meaning(v)) not in (None, "", [], {})}
    if isinstance(value, list):
        return [m for v in value if (m := _meaning(v)) not in (None, "", [], {})]
    return value.strip() if isinstance(value, str) else value


@settings(max_examples=300, deadline=None)
@given(_TREES)
def test_compact_drops_every_empty_field_and_keeps_the_rest(value: Any) -> None:
    out = compact(value)
    assert not _empty_anywhere(out)
    assert out == _meaning(value)
    assert compact(out) == out  # idempotent


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60))
def test_card_uuids_are_rfc4122_uuid5_of_the_call_and_key(name: str) -> None:
    assert uuid5(name) == str(uuid.uuid5(uuid.UUID("6f1c2a52-8a3e-4c55-9d0f-2b9a3f0e7c11"), name))
