"""The next-line choice's modifiers and words (next_line.yaml), read and checked."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


def _words(text: object) -> str:
    return " ".join(str(text).split())


_BRAIN_TEXTS = (
    "caveat",
    "not_offered",
    "later_line",
    "predominant",
    "extracranial",
    "extracranial_triplet_first",
    "extracranial_no_tdxd",
)


@dataclass(frozen=True)
class BrainPreference:
    """Active brain metastases: the regimen preferred for predominantly CNS disease, its rank
    beside extracranial disease, and the words said (CLINICAL.md section 3 modifiers)."""

    cns_preferred: str = ""
    extracranial_rank: float = 0.5
    caveat: str = ""
    not_offered: str = ""
    later_line: str = ""
    predominant: str = ""
    extracranial: str = ""
    extracranial_triplet_first: str = ""  # T-DXd no option, the triplet recommended
    extracranial_no_tdxd: str = ""  # T-DXd no option, another regimen recommended


@dataclass(frozen=True)
class NextLineKnowledge:
    """next_line.yaml: jurisdictions, the ILD and brain-metastasis modifiers, exclusion words and
    the next-line card's override reasons."""

    jurisdictions: tuple[str, ...] = ("FDA", "EMA")
    ild: dict[str, str] = field(default_factory=dict)
    brain: BrainPreference = field(default_factory=BrainPreference)
    exclusions: dict[str, str] = field(default_factory=dict)
    override_reasons: tuple[tuple[str, str], ...] = ()  # (code, display)

    def ild_text(self, name: str, **fields: object) -> str:
        return self.ild[name].format(**fields)

    def exclusion(self, name: str, **fields: object) -> str:
        return self.exclusions[name].format(**fields)


def parse_next_line(doc: dict[str, Any], regimens: set[str]) -> tuple[NextLineKnowledge, list[str]]:
    """The next-line knowledge, and what in it names an unknown regimen."""
    brain = doc["brain_metastases"]
    errors = (
        [f"brain_metastases.cns_preferred: unknown regimen {brain['cns_preferred']!r}"]
        if brain["cns_preferred"] not in regimens
        else []
    )
    out = NextLineKnowledge(
        jurisdictions=tuple(doc["jurisdictions"]),
        ild={k: _words(v) for k, v in doc["ild"].items()},
        brain=BrainPreference(
            cns_preferred=brain["cns_preferred"],
            extracranial_rank=float(brain.get("extracranial_rank", 0.5)),
            **{k: _words(v) for k, v in brain.items() if isinstance(v, str) and k in _BRAIN_TEXTS},
        ),
        exclusions={k: _words(v) for k, v in doc["exclusions"].items()},
        override_reasons=tuple((o["code"], o["display"]) for o in doc["override_reasons"]),
    )
    return out, errors
