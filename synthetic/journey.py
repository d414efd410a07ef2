"""Patient journeys: the clinical story the generator draws before any FHIR is written.

A journey is what the generator *knows* (the ground truth): diagnosis, receptor tests, metastatic
sites, early (neo)adjuvant therapy, metastatic lines with their drugs and dates, progressions,
toxicities and the LVEF series. This module holds the journey's data model and the catalogue it
is drawn from; `synthetic.draw_journey.draw` draws one, `synthetic.fhir` renders it as FHIR with
EHR-like coding variation, and `synthetic.truth` derives the expected answer from it and
CLINICAL.md's rules.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

CATALOGUE = Path(__file__).parent / "catalogue.yaml"
GENERATOR_VERSION = "2"  # 2: the shapes of issue 18 (catalogue `shapes`), revised CLINICAL.md truth
STREAM_VERSION = (
    "1"  # in the random streams' names: unchanged, so shape-less journeys stay as they were
)


@lru_cache(maxsize=1)
def catalogue() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(CATALOGUE.read_text(encoding="utf-8"))
    return data


@dataclass
class Course:
    """One drug given on a schedule from `start` to `end` (None: ongoing at the snapshot)."""

    drug: str
    start: date
    end: date | None
    setting: str = "metastatic"  # or "early"
    phesgo_from: date | None = None  # pertuzumab/trastuzumab switched to Phesgo SC from here
    last_dose: date | None = None  # an ongoing course whose last dose is this day (a delayed cycle)

    def doses(self, as_of: date) -> list[date]:
        """Dose (IV) or fill (oral) dates of the course, up to its end or the snapshot."""
        step = int(catalogue()["drugs"][self.drug]["cycle_days"])
        if self.last_dose is not None:  # counted back from the last dose, so it is that day
            out = []
            d = self.last_dose
            while d >= self.start:
                out.append(d)
                d -= timedelta(days=step)
            return out[::-1]
        last = self.end or as_of
        out = []
        d = self.start
        while d <= last:
            out.append(d)
            d += timedelta(days=step)
        return out


@dataclass
class Line:
    number: int
    plan: str  # KB regimen id or a generator label (chemo-only, endocrine-only, hp-endocrine, ...)
    start: date
    end: date | None
    courses: list[Course]
    progression: date | None = None  # documented progression that ended the line
    stop_reason: str = "ongoing"  # progression | pneumonitis | ongoing
    deviation: str = ""  # why the line departs from the guideline sequence, when it does

    @property
    def drugs(self) -> list[str]:
        return sorted({c.drug for c in self.courses})


@dataclass
class Her2Test:
    when: date
    method: str  # ihc | ish | interpretation
    result: str  # 3+ | 2+ | 1+ | 0 | positive | negative
    specimen: str  # primary | metastatic
    site: str = "breast"
    specimen_resource: bool = False  # written with a Specimen resource (type, collection site)
    site_written: bool | None = None  # set by the renderer: the report names its specimen


@dataclass
class Event:
    """A dated condition: ILD, heart failure, metastasis, other cancers and comorbidities."""

    kind: str
    onset: date
    status: str = "active"  # condition clinicalStatus
    verification: str = "confirmed"  # or refuted, entered-in-error; negated/uncertain: text only
    text: str = ""  # a free-text problem entry (no code): the words written instead


@dataclass
class Journey:
    patient_id: str
    index: int
    as_of: date
    kind: str
    sex: str
    birth_date: date
    name: tuple[str, str]
    diagnosis: date | None = None
    cancer: str = "breast"  # breast | stomach | lung | colon | none
    de_novo: bool = False
    metastatic_since: date | None = None
    stage: str = ""  # stage group at diagnosis, e.g. "2A", "4"
    sites: list[Event] = field(default_factory=list)
    her2_tests: list[Her2Test] = field(default_factory=list)
    her2_condition: str = ""  # positive | negative | "" (no HER2 diagnosis Condition)
    her2_condition_date: date | None = None  # the diagnosis rests on the first (primary) test
    er_positive: bool = False
    pr_positive: bool = False
    early: list[Course] = field(default_factory=list)
    lines: list[Line] = field(default_factory=list)
    assessments: list[tuple[date, str]] = field(default_factory=list)  # 97509-4: worsened/...
    events: list[Event] = field(default_factory=list)  # ild, heart-failure, comorbidities
    lvef: list[tuple[date, int]] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    shape: str = ""  # the issue-18 shape drawn for this patient (catalogue `shapes`), if any
    data_until: date | None = None  # stale or deceased: the record ends here, before as_of
    deceased: str = ""  # "" | datetime | boolean (Patient.deceased[x])
    deceased_date: date | None = None

    @property
    def record_date(self) -> date:
        """The date the record was written up to (the snapshot, unless the record stops early)."""
        return self.data_until or self.as_of

    @property
    def age(self) -> int:
        """Age in whole years at the snapshot."""
        before = (self.as_of.month, self.as_of.day) < (self.birth_date.month, self.birth_date.day)
        return self.as_of.year - self.birth_date.year - int(before)

    @property
    def hr_positive(self) -> bool:
        return self.er_positive or self.pr_positive
