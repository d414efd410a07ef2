"""Pieces every card shares: uuids, source, the org.her2cds extension, links, override reasons."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from datetime import date
from typing import Any

from engine.model import Coding, Evidence, TherapyLine

SERVICE_LABEL = "HER2 next-line CDS"
SOURCE_URL = "https://github.com/her2-cds/her2-cds"
TOPIC_SYSTEM = "http://her2cds.org/CodeSystem/card-topic"
EXTENSION_KEY = "org.her2cds"
_NAMESPACE = uuid.UUID("6f1c2a52-8a3e-4c55-9d0f-2b9a3f0e7c11")
_NAMESPACE_BYTES = _NAMESPACE.bytes


class UuidFactory:
    """Deterministic uuids per request: uuid5(hookInstance, key), unique within a response.

    Deterministic so that the same request gives the same card ids (feedback can name them,
    golden tests can pin them), and different requests never share ids.
    """

    def __init__(self, instance: str) -> None:
        self.instance = instance
        self._seen: dict[str, int] = {}

    def __call__(self, key: str) -> str:
        n = self._seen.get(key, 0)
        self._seen[key] = n + 1
        return uuid5(f"{self.instance}:{key}:{n}")


def uuid5(name: str) -> str:
    """str(uuid.uuid5(_NAMESPACE, name)), without building UUID objects (a few per card)."""
    digest = bytearray(hashlib.sha1(_NAMESPACE_BYTES + name.encode()).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def source(knowledge_version: str, topic: str, topic_display: str) -> dict[str, Any]:
    return {
        "label": f"{SERVICE_LABEL} (knowledge {knowledge_version})",
        "url": SOURCE_URL,
        "topic": {"system": TOPIC_SYSTEM, "code": topic, "display": topic_display},
    }


def extension(kind: str, knowledge_version: str, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"kind": kind, "knowledgeVersion": knowledge_version}
    body.update({k: v for k, v in fields.items() if v not in (None, "", [], {})})
    return {EXTENSION_KEY: body}


UNVERIFIED_MARK = " (citation unverified)"


def evidence_title(ev: Evidence) -> str:
    """The title, marked when the knowledge base says the citation is unverified: cards never
    show an unverified entry as if it were checked."""
    return ev.title if ev.verified else ev.title + UNVERIFIED_MARK


def _first_of_each(
    evidence: tuple[Evidence, ...] | list[Evidence], key: Callable[[Evidence], str]
) -> list[Evidence]:
    """The evidence without repeats: the first entry of each `key`, in order."""
    seen: set[str] = set()
    first = []
    for ev in evidence:
        if key(ev) not in seen:
            seen.add(key(ev))
            first.append(ev)
    return first


def evidence_links(evidence: tuple[Evidence, ...] | list[Evidence]) -> list[dict[str, Any]]:
    return [
        {"label": f"Evidence: {evidence_title(ev)}", "url": ev.url, "type": "absolute"}
        for ev in _first_of_each(evidence, lambda ev: ev.url)
    ]


def timeline_link(url: str) -> dict[str, Any]:
    """The link to the timeline view: a plain page, not a SMART app, so an `absolute` link that
    any client opens (its view token is what protects it)."""
    return {
        "label": "Therapy timeline (lines, progression, ILD, LVEF)",
        "url": url,
        "type": "absolute",
    }


# Names a client must not wrap at their hyphen ("T-" at a line's end, "DM1" on the next): in
# card summaries and suggestion labels they get a non-breaking hyphen (U+2011) when rendered.
NO_BREAK_NAMES = ("T-DM1", "T-DXd")
NON_BREAKING_HYPHEN = "\u2011"


def unbroken(text: str) -> str:
    """`text` with the hyphen of each name in NO_BREAK_NAMES made non-breaking."""
    for name in NO_BREAK_NAMES:
        if name in text:
            text = text.replace(name, name.replace("-", NON_BREAKING_HYPHEN))
    return text


def unbroken_titles(cards: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Cards with unbroken() applied to each summary and suggestion label (in place), at
    rendering only: the engine's and the knowledge's strings keep plain hyphens."""
    for card in cards:
        card["summary"] = unbroken(card["summary"])
        for suggestion in card.get("suggestions") or ():
            suggestion["label"] = unbroken(suggestion["label"])
    return cards


def compact(value: Any) -> Any:
    """Drop None, "", [] and {} everywhere: CDS Hooks asks to omit a field rather than send it
    empty. Applied to every card, so a rule added to the engine with an empty field stays valid.
    Strings are stripped; a container left empty by compacting is dropped too. One pass, no
    intermediate copies (it runs over every card of every response)."""
    kind = type(value)
    if kind is dict:
        return _compact_dict(value)
    if kind is list:
        return _compact_list(value)
    if kind is str:
        return value.strip()
    if isinstance(value, dict):
        return _compact_dict(value)
    if isinstance(value, list):
        return _compact_list(value)
    if isinstance(value, str):
        return value.strip()
    return value


def _kept(value: Any) -> Any:
    """The compacted value, or _DROP when it is empty (for values of other types)."""
    value = compact(value)
    return _DROP if value in _EMPTY else value


# The loops below inline the common kinds (str, dict, list, None, numbers): a card has a few
# hundred values, and a call per value was a third of compacting's time.
def _compact_dict(value: dict[Any, Any]) -> dict[Any, Any]:
    out = {}
    for key, item in value.items():
        kind = type(item)
        if kind is str:
            item = item.strip()
            if item:
                out[key] = item
        elif kind is dict:
            item = _compact_dict(item)
            if item:
                out[key] = item
        elif kind is list:
            item = _compact_list(item)
            if item:
                out[key] = item
        elif item is None:
            continue
        elif kind is int or kind is bool or kind is float:
            out[key] = item
        else:
            item = _kept(item)
            if item is not _DROP:
                out[key] = item
    return out


def _compact_list(value: list[Any]) -> list[Any]:
    out = []
    for item in value:
        kind = type(item)
        if kind is str:
            item = item.strip()
            if item:
                out.append(item)
        elif kind is dict:
            item = _compact_dict(item)
            if item:
                out.append(item)
        elif kind is list:
            item = _compact_list(item)
            if item:
                out.append(item)
        elif item is None:
            continue
        elif kind is int or kind is bool or kind is float:
            out.append(item)
        else:
            item = _kept(item)
            if item is not _DROP:
                out.append(item)
    return out


_DROP = object()
_EMPTY: tuple[Any, ...] = (None, "", [], {})


def evidence_markdown(evidence: tuple[Evidence, ...] | list[Evidence]) -> str:
    lines = []
    for ev in _first_of_each(evidence, lambda ev: ev.id):
        title = f"**{ev.title}**" + ("" if ev.verified else UNVERIFIED_MARK)
        lines.append(f"- {title}: {ev.summary} *{ev.citation}* <{ev.url}>")
    return "\n".join(lines)


def evidence_section(evidence: tuple[Evidence, ...] | list[Evidence]) -> str:
    """A card detail's '### Evidence' section ("" without evidence)."""
    return "\n\n### Evidence\n" + evidence_markdown(evidence) if evidence else ""


def override_reasons(codings: tuple[Coding, ...]) -> list[dict[str, str]]:
    return [{"system": c.system, "code": c.code, "display": c.display} for c in codings]


def shorten(text: str, limit: int = 139) -> str:
    """CDS Hooks summaries must be under 140 characters."""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def line_status(line: TherapyLine, as_of: date) -> tuple[str, str, bool]:
    """(dates, how it ended, still running) as a clinician reads them: "last dose on <date>"
    (an administration is one dose on one day; a line ends at its last dose, CLINICAL.md 2.5).
    A line the mappers did not find ongoing has stopped, and no date shown is after `as_of`."""
    running = line.end is None
    last = line.last_dose if line.last_dose is not None and line.last_dose <= as_of else None
    if running:
        # no "last dose" date while it runs: the drugs still given may have none recorded, and
        # one stopped drug's last dose is not the line's (CLINICAL.md 2.5)
        dates = f"{line.start.isoformat()} to ongoing"
    elif last is not None and last == line.end:
        dates = f"{line.start.isoformat()}, last dose on {last.isoformat()}"
    else:
        end = min(line.end, as_of) if line.end is not None else as_of
        dates = f"{line.start.isoformat()} to {end.isoformat()}"
    if line.ended_in_progression:
        ended = "progression"
    elif running:
        ended = "ongoing"
    else:
        ended = line.stop_reason or "stopped"
    return dates, ended, running
