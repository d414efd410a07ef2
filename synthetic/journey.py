"""Patient journeys: the clinical story the generator draws before any FHIR is written.

A journey is what the generator *knows* (the ground truth): diagnosis, receptor tests, metastatic
sites, early (neo)adjuvant therapy, metastatic lines with their drugs and dates, progressions,
toxicities and the LVEF series. `synthetic.fhir` renders it as FHIR with EHR-like coding
variation; `synthetic.truth` derives the expected answer from it and CLINICAL.md's rules.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from engine.knowledge import Knowledge, load_knowledge

CATALOGUE = Path(__file__).parent / "catalogue.yaml"
GENERATOR_VERSION = "1"


@lru_cache(maxsize=1)
def catalogue() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(CATALOGUE.read_text(encoding="utf-8"))
    return data


def months(n: float) -> timedelta:
    return timedelta(days=round(n * 30.4375))


@dataclass
class Course:
    """One drug given on a schedule from `start` to `end` (None: ongoing at the snapshot)."""

    drug: str
    start: date
    end: date | None
    setting: str = "metastatic"  # or "early"
    phesgo_from: date | None = None  # pertuzumab/trastuzumab switched to Phesgo SC from here

    def doses(self, as_of: date) -> list[date]:
        """Dose (IV) or fill (oral) dates of the course, up to its end or the snapshot."""
        step = int(catalogue()["drugs"][self.drug]["cycle_days"])
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


@dataclass
class Event:
    """A dated condition: ILD, heart failure, metastasis, other cancers and comorbidities."""

    kind: str
    onset: date
    status: str = "active"  # condition clinicalStatus
    verification: str = "confirmed"


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

    @property
    def hr_positive(self) -> bool:
        return self.er_positive or self.pr_positive


# ---------------------------------------------------------------------------------------------
# Drawing
# ---------------------------------------------------------------------------------------------

_GIVEN = ["Maria", "Linda", "Susan", "Aiko", "Fatima", "Olga", "Grace", "Ines", "Priya", "Joan"]
_GIVEN += ["Hana", "Rosa", "Amara", "Helen", "Mei", "Sofia", "Nadia", "Ruth", "Carmen", "Lea"]
_FAMILY = ["Garcia", "Okafor", "Nguyen", "Schmidt", "Kowalski", "Haddad", "Silva", "Tanaka"]
_FAMILY += ["Murphy", "Rossi", "Jensen", "Novak", "Mensah", "Cohen", "Patel", "Larsen"]
_MALE_GIVEN = ["James", "Omar", "Piotr", "Kenji"]


def _pick(rng: random.Random, shares: dict[str, float]) -> str:
    x = rng.random()
    acc = 0.0
    for key, share in shares.items():
        acc += share
        if x < acc:
            return key
    return next(reversed(shares))


def _duration(rng: random.Random, plan: str) -> float:
    """A line duration in months: lognormal around the trial's median PFS, at least min_line_months."""
    cat = catalogue()
    median = float(cat["pfs_months"].get(plan, 8.0))
    value = median * math.exp(rng.gauss(0.0, 0.55))
    return max(float(cat["min_line_months"]), min(value, 54.0))


def _days(rng: random.Random, lo: int, hi: int) -> timedelta:
    return timedelta(days=rng.randint(lo, hi))


class Drawer:
    """Draws one journey from a per-patient random stream (reproducible from seed and index)."""

    def __init__(self, rng: random.Random, as_of: date, kb: Knowledge | None = None) -> None:
        self.rng = rng
        self.as_of = as_of
        self.kb = kb or load_knowledge()
        self.cat = catalogue()
        self.p = self.cat["journey"]

    def chance(self, key: str) -> bool:
        return self.rng.random() < float(self.p[key])

    # -- people ------------------------------------------------------------------------------
    def person(self, index: int, kind: str) -> Journey:
        rng = self.rng
        male = kind != "non-breast" and rng.random() < 0.01
        sex = (
            "male" if male else ("female" if kind != "non-breast" or rng.random() < 0.5 else "male")
        )
        given = rng.choice(_MALE_GIVEN if sex == "male" else _GIVEN)
        age = rng.randint(32, 84)
        birth = self.as_of - timedelta(days=age * 365 + rng.randint(0, 364))
        pid = f"synth-{index:05d}-{rng.getrandbits(32):08x}"
        return Journey(pid, index, self.as_of, kind, sex, birth, (given, rng.choice(_FAMILY)))

    # -- receptor status ---------------------------------------------------------------------
    def her2_positive_tests(self, j: Journey, when: date) -> None:
        rng = self.rng
        if rng.random() < 0.7:
            j.her2_tests.append(Her2Test(when, "ihc", "3+", "primary"))
        else:  # IHC 2+ resolved by ISH (ASCO/CAP)
            j.her2_tests.append(Her2Test(when, "ihc", "2+", "primary"))
            j.her2_tests.append(Her2Test(when + _days(rng, 3, 12), "ish", "positive", "primary"))
            j.tags.append("her2-equivocal-ish-positive")
        if rng.random() < 0.4:
            j.her2_tests.append(
                Her2Test(when + _days(rng, 13, 20), "interpretation", "positive", "primary")
            )
        if rng.random() < float(self.cat["coding"]["her2_condition"]):
            j.her2_condition = "positive"
            j.her2_condition_date = when

    def hormone_receptors(self, j: Journey, share: float) -> None:
        j.er_positive = self.rng.random() < share
        j.pr_positive = j.er_positive and self.rng.random() < 0.7

    def lvef_series(self, j: Journey, start: date, end: date, base: int) -> None:
        """An LVEF every ~3 months on HER2-directed therapy (with missed scans), small drift."""
        d = start
        while d <= end:
            j.lvef.append((d, base + self.rng.randint(-4, 3)))
            d += _days(self.rng, 80, 100)

    # -- early setting -----------------------------------------------------------------------
    def early_therapy(self, j: Journey, start: date, hr_pos: bool, katherine: bool = True) -> date:
        """(Neo)adjuvant HER2-directed therapy from `start`; returns the last HER2-directed date."""
        rng = self.rng
        schemas = ["tchp", "tchp", "ac-th", "th"] + (["tchp-katherine"] if katherine else [])
        schema = rng.choice(schemas)
        courses: list[Course] = []
        if schema in ("tchp", "tchp-katherine"):
            chemo_end = start + timedelta(days=21 * 5)
            for drug in ("docetaxel", "carboplatin"):
                courses.append(Course(drug, start, chemo_end, "early"))
            antibody_start = start
        elif schema == "ac-th":
            ac_end = start + timedelta(days=21 * 3)
            courses += [
                Course(d, start, ac_end, "early") for d in ("doxorubicin", "cyclophosphamide")
            ]
            antibody_start = ac_end + timedelta(
                days=21 + rng.randint(14, 28)
            )  # sequential, never concurrent
            courses.append(
                Course(
                    "paclitaxel", antibody_start, antibody_start + timedelta(days=7 * 11), "early"
                )
            )
        else:
            antibody_start = start
            courses.append(Course("paclitaxel", start, start + timedelta(days=7 * 11), "early"))
        if schema == "tchp-katherine":  # residual disease after neoadjuvant: T-DM1 x14 (KATHERINE)
            her2_end = antibody_start + timedelta(days=21 * 5)
            courses.append(Course("trastuzumab", antibody_start, her2_end, "early"))
            courses.append(Course("pertuzumab", antibody_start, her2_end, "early"))
            surgery = her2_end + _days(rng, 28, 42)
            tdm1_end = surgery + timedelta(days=21 * 13)
            courses.append(Course("ado-trastuzumab emtansine", surgery, tdm1_end, "early"))
            j.tags.append("katherine-tdm1")
            last = tdm1_end
        else:
            her2_end = antibody_start + timedelta(days=21 * 17)  # one year of trastuzumab
            courses.append(Course("trastuzumab", antibody_start, her2_end, "early"))
            if schema == "tchp":
                courses.append(Course("pertuzumab", antibody_start, her2_end, "early"))
            last = her2_end
        if hr_pos:
            drug = "tamoxifen" if j.sex == "male" or rng.random() < 0.3 else "letrozole"
            courses.append(Course(drug, her2_end + _days(rng, 7, 30), None, "early"))
            if schema != "tchp-katherine" and rng.random() < 0.25:  # ExteNET extended adjuvant
                courses.append(Course("neratinib", her2_end + _days(rng, 14, 40), None, "early"))
        j.early = courses
        j.tags.append(f"early-{schema}")
        return last

    def close_early(self, j: Journey, until: date) -> None:
        """Open-ended early courses (endocrine, neratinib) stop at relapse or after their term."""
        for c in j.early:
            if c.end is None:
                term = 365 if c.drug == "neratinib" else 5 * 365
                c.end = min(c.start + timedelta(days=term), until - _days(self.rng, 3, 10))
                c.end = max(c.end, c.start + timedelta(days=30))

    # -- metastatic lines ----------------------------------------------------------------------
    def plan_lines(
        self,
        n: int,
        prior0: int,
        hr_pos: bool,
        cns_only: bool,
        ild_before: bool,
        ongoing: bool = False,
    ) -> list[tuple[str, str]]:
        """(plan, deviation) per line: the guideline sequence, with drawn deviations."""
        rng = self.rng
        plans: list[tuple[str, str]] = []
        k = prior0
        received: set[str] = set()
        dev_share = float(self.p["deviation"])
        for i in range(n):
            plan, why = "", ""
            deviate = rng.random() < dev_share
            if deviate and rng.random() < 0.2:
                plan, why = (
                    rng.choice(["chemo-only", "endocrine-only" if hr_pos else "chemo-only"]),
                    "HER2 blockade not continued",
                )
            elif k == 0:
                plan = "thp"
                if deviate:
                    choices = ["tdxd-pertuzumab"] + (["hp-endocrine"] if hr_pos else [])
                    plan, why = rng.choice(choices), "first-line alternative"
            elif k == 1:
                plan = "tdxd"
                if "tdxd-pertuzumab" in received:  # T-DXd already given first line (DB-09)
                    plan = "tucatinib-trastuzumab-capecitabine" if rng.random() < 0.6 else "tdm1"
                elif ild_before:
                    plan = "tdm1"
                elif cns_only and rng.random() < 0.6:
                    plan = "tucatinib-trastuzumab-capecitabine"
                elif deviate:
                    plan, why = "tdm1", "T-DM1 instead of T-DXd"
            else:
                order = ["tucatinib-trastuzumab-capecitabine", "tdm1", "tdxd"]
                if ild_before:
                    order.remove("tdxd")
                given = received | ({"tdxd"} if "tdxd-pertuzumab" in received else set())
                fresh = [p for p in order if p not in given]
                if deviate or not fresh:
                    options = [
                        "lapatinib-capecitabine",
                        "trastuzumab-chemo",
                        "neratinib-capecitabine",
                    ]
                    if k >= 2:
                        options.append("margetuximab-chemo")
                    # a regimen that already failed is not given again (trastuzumab + chemotherapy
                    # may be, with another partner)
                    options = [o for o in options if o not in received] or ["trastuzumab-chemo"]
                    plan, why = rng.choice(options), "later-line option"
                else:
                    plan = fresh[0]
            if i == n - 1 and k >= 1 and ongoing and rng.random() < 0.03:
                plan, why = "anthracycline-trastuzumab", "anthracycline with trastuzumab"
            plans.append((plan, why))
            received.add(plan)
            if plan not in ("chemo-only", "endocrine-only"):
                k += 1
        return plans

    def courses_for(
        self,
        j: Journey,
        plan: str,
        start: date,
        end: date | None,
        avoid: frozenset[str] = frozenset(),
    ) -> list[Course]:
        """The drugs of a plan; `avoid`: the previous line's drugs (a failed chemotherapy or
        endocrine pair is not given again as the 'new' line)."""
        rng = self.rng
        c: list[Course] = []

        def fresh(*options: str) -> str:
            usable = [o for o in options if o not in avoid]
            return rng.choice(usable or list(options))

        def add(drug: str, s: date = start, e: date | None = end) -> None:
            c.append(Course(drug, s, e))

        def capped(days: int) -> date:
            limit = start + timedelta(days=days)
            return limit if end is None or limit < end else end

        if plan == "thp":
            if rng.random() < 0.65:
                taxane_end = capped(21 * 5)
                add("docetaxel", start, taxane_end)
            else:
                taxane_end = capped(7 * rng.randint(11, 17))
                add("paclitaxel", start, taxane_end)
            add("trastuzumab")
            add("pertuzumab")
            if rng.random() < 0.12:
                switch = taxane_end + _days(rng, 21, 42)
                for course in c:
                    if course.drug in ("trastuzumab", "pertuzumab") and switch < (
                        end or self.as_of
                    ) - timedelta(days=21):
                        course.phesgo_from = switch
            recent = end is None and (self.as_of - start).days < 90  # taxane still running
            concurrent = j.hr_positive and recent and rng.random() < 0.3
            if concurrent:  # deviation: endocrine therapy started with the taxane
                add("letrozole" if j.sex == "female" else "tamoxifen", start)
                j.tags.append("chemo-endocrine-concurrent")
            elif j.hr_positive and rng.random() < float(self.p["endocrine_maintenance"]):
                e_start = taxane_end + _days(rng, 28, 49)
                if e_start < (end or self.as_of) - timedelta(days=30):  # started by the snapshot
                    add(
                        "tamoxifen"
                        if j.sex == "male"
                        else rng.choice(["letrozole", "anastrozole"]),
                        e_start,
                    )
                    j.tags.append("endocrine-maintenance")
        elif plan == "tdxd-pertuzumab":
            add("fam-trastuzumab deruxtecan")
            add("pertuzumab")
        elif plan == "tdxd":
            add("fam-trastuzumab deruxtecan")
        elif plan == "tdm1":
            add("ado-trastuzumab emtansine")
        elif plan == "tucatinib-trastuzumab-capecitabine":
            add("tucatinib")
            add("trastuzumab")
            add("capecitabine")
        elif plan == "lapatinib-capecitabine":
            add("lapatinib")
            add("capecitabine")
        elif plan == "neratinib-capecitabine":
            add("neratinib")
            add("capecitabine")
        elif plan == "margetuximab-chemo":
            add("margetuximab")
            add("capecitabine")
        elif plan == "trastuzumab-chemo":
            add("trastuzumab")
            add(fresh("vinorelbine", "vinorelbine", "eribulin", "gemcitabine"))
        elif plan == "hp-endocrine":
            add("trastuzumab")
            add("pertuzumab")
            add(rng.choice(["letrozole", "anastrozole"]))
        elif plan == "chemo-only":
            add(fresh("capecitabine", "eribulin", "vinorelbine"))
        elif plan == "endocrine-only":
            pairs = [("letrozole", "palbociclib"), ("fulvestrant", "abemaciclib")]
            pair = rng.choice([p for p in pairs if not set(p) & avoid] or pairs)
            for drug in pair:
                add(drug)
        elif plan == "anthracycline-trastuzumab":
            add("doxorubicin")
            add("trastuzumab")
        else:  # pragma: no cover - a plan without courses is a generator bug
            raise ValueError(f"unknown plan {plan}")
        return c

    def place_lines(self, j: Journey, plans: list[tuple[str, str]], ongoing: bool) -> date:
        """Lay the lines out backwards from the snapshot; returns the metastatic date."""
        rng = self.rng
        spans: list[tuple[date, date | None, date | None]] = []  # start, end, progression
        cursor: date | None = None  # start of the following line
        for idx in range(len(plans) - 1, -1, -1):
            plan = plans[idx][0]
            dur = months(_duration(rng, plan))
            if cursor is None:  # the last line
                if ongoing:
                    elapsed = timedelta(days=rng.randint(45, max(46, dur.days)))
                    start = self.as_of - elapsed
                    spans.append((start, None, None))
                else:
                    prog = self.as_of - _days(rng, 7, 60)
                    spans.append((prog - dur, prog, prog))
            else:
                prog = cursor - _days(rng, 14, 35)
                spans.append((prog - dur, prog, prog))
            cursor = spans[-1][0]
        spans.reverse()
        first = spans[0][0] if spans else self.as_of - _days(rng, 0, 10)
        metastatic = first - _days(rng, 14, 45)
        for number, ((plan, why), (l_start, l_end, l_prog)) in enumerate(
            zip(plans, spans, strict=True), 1
        ):
            line = Line(
                number,
                plan,
                l_start,
                l_end,
                [],
                l_prog,
                "progression" if l_prog else "ongoing",
                why,
            )
            avoid = frozenset(j.lines[-1].drugs) if j.lines else frozenset()
            line.courses = self.courses_for(j, plan, l_start, l_end, avoid)
            j.lines.append(line)
        return metastatic

    def pneumonitis_on_tdxd(self, j: Journey) -> None:
        """Drug-induced pneumonitis on T-DXd: stop the line (grade 2+) or resume (grade 1)."""
        rng = self.rng
        for i, line in enumerate(j.lines):
            if "fam-trastuzumab deruxtecan" not in line.drugs or not self.chance("ild_on_tdxd"):
                continue
            span_end = line.end or self.as_of
            if (span_end - line.start).days < 170:
                continue
            onset = line.start + _days(rng, 140, (span_end - line.start).days - 20)
            if self.chance("ild_on_tdxd_rechallenged"):
                j.events.append(Event("ild-drug", onset, "resolved"))
                j.tags.append("ild-on-tdxd-rechallenged")
                continue
            j.events.append(Event("ild-drug", onset, rng.choice(["active", "resolved"])))
            j.tags.append("ild-on-tdxd-stopped")
            stop = onset + _days(rng, 0, 6)
            line.end, line.progression, line.stop_reason = stop, None, "pneumonitis"
            for c in line.courses:
                c.end = stop
            # the rest of the journey shifts: later lines start 4-10 weeks after the stop
            if i + 1 < len(j.lines):
                del j.lines[i + 1 :]
                if rng.random() < 0.7:
                    nxt_start = stop + _days(rng, 30, 70)
                    if nxt_start < self.as_of - timedelta(days=30):
                        plan = "tucatinib-trastuzumab-capecitabine"
                        if plan in {ln.plan for ln in j.lines}:
                            plan = "tdm1"
                        nl = Line(
                            len(j.lines) + 1,
                            plan,
                            nxt_start,
                            None,
                            [],
                            None,
                            "ongoing",
                            "after pneumonitis",
                        )
                        nl.courses = self.courses_for(j, plan, nxt_start, None)
                        j.lines.append(nl)
            break

    def her2_metastatic(self, j: Journey) -> None:
        rng, p = self.rng, self.p
        self.hormone_receptors(j, float(p["hr_positive"]))
        weights = [float(w) for w in p["lines_weights"]]
        n = rng.choices(range(len(weights)), weights)[0]
        ongoing = n > 0 and self.chance("last_line_ongoing")
        j.de_novo = self.chance("de_novo")
        early_relapse = not j.de_novo and self.chance("early_relapse_share")
        brain = self.chance("brain_metastases")
        cns_only = brain and self.chance("cns_only_given_brain")
        ild_before = self.chance("ild_history")
        plans = self.plan_lines(
            n, 1 if early_relapse else 0, j.hr_positive, cns_only, ild_before, ongoing
        )
        metastatic = self.place_lines(j, plans, ongoing)
        j.metastatic_since = metastatic
        if j.de_novo:
            j.diagnosis = metastatic
            j.stage = "4"
            self.her2_positive_tests(j, metastatic - _days(rng, 3, 10))
        else:
            # early disease years before, (neo)adjuvant therapy, relapse after a drawn interval
            # relapse after KATHERINE T-DM1 is drawn late only (early relapse is measured from
            # trastuzumab in CLINICAL.md; T-DM1 would make the interval ambiguous)
            last_her2 = self.early_therapy(j, date(2000, 1, 1), j.hr_positive, not early_relapse)
            katherine = "katherine-tdm1" in j.tags
            interval = (
                months(rng.uniform(3, 10))
                if early_relapse
                else months(rng.uniform(15 if not katherine else 16, 72))
            )
            shift = (metastatic - interval) - last_her2
            for c in j.early:
                c.start += shift
                if c.end is not None:
                    c.end += shift
            self.close_early(j, metastatic)
            start = min(c.start for c in j.early)
            j.diagnosis = start - _days(rng, 14, 35)
            j.stage = rng.choice(["1A", "2A", "2B", "3A", "3C"])
            self.her2_positive_tests(j, j.diagnosis - _days(rng, 0, 7))
            j.tags.append("early-relapse" if early_relapse else "late-relapse")
        if early_relapse:
            j.tags.append("counts-as-prior-line")
        # metastatic sites
        if cns_only:
            j.sites.append(Event("brain", metastatic))
            j.tags.append("cns-only")
        else:
            pool = ["bone", "liver", "lung", "lymph-node"]
            chosen = [s for s in pool if rng.random() < 0.45] or [rng.choice(pool)]
            j.sites += [Event(s, metastatic) for s in chosen]
            if brain:
                when = metastatic
                if j.lines and rng.random() < 0.6:
                    prog_dates = [ln.progression for ln in j.lines if ln.progression]
                    if prog_dates:
                        when = rng.choice(prog_dates)
                j.sites.append(Event("brain", when))
                j.tags.append("brain-and-extracranial")
        if brain and self.chance("brain_inactive_given_brain"):
            for s in j.sites:
                if s.kind == "brain":
                    s.status = rng.choice(["remission", "inactive"])
            j.tags.append("brain-inactive")
        if self.chance("metastatic_rebiopsy"):
            # distant sites only: an axillary node can be regional disease, so a node biopsy
            # would not say "metastatic" unambiguously
            site = next((s.kind for s in j.sites if s.kind in ("liver", "bone", "lung")), "")
            if site:
                first_primary = min(t.when for t in j.her2_tests)
                # the metastatic biopsy is newer than the first primary result (and the HER2
                # diagnosis resting on it), so "metastatic outranks primary" is unambiguous
                when = max(metastatic - _days(rng, 2, 10), first_primary + timedelta(days=1))
                result = "negative" if rng.random() < 0.06 else "positive"
                j.her2_tests.append(
                    Her2Test(
                        when,
                        rng.choice(["ihc", "interpretation"]) if result == "positive" else "ihc",
                        "3+" if result == "positive" else "1+",
                        "metastatic",
                        site,
                    )
                )
                if result == "negative":
                    j.tags.append("her2-loss-on-metastasis")
                else:
                    j.tags.append("her2-metastatic-biopsy")
        # toxicities and comorbidities
        if ild_before:
            onset = (j.diagnosis or metastatic) + _days(rng, 60, 400)
            onset = min(onset, self.as_of - timedelta(days=20))
            kind = (
                rng.choice(["ild-radiation", "ild-idiopathic", "ild-drug"])
                if not j.de_novo
                else "ild-idiopathic"
            )
            j.events.append(Event(kind, onset, rng.choice(["active", "resolved"])))
            j.tags.append("ild-history")
        self.pneumonitis_on_tdxd(j)
        if rng.random() < 0.01:  # an ILD entry that was entered in error: must be ignored
            j.events.append(Event("ild-idiopathic", metastatic, "active", "entered-in-error"))
            j.tags.append("ild-entered-in-error")
        self.cardiac(j)
        self.assessments(j)
        if any(s.kind == "bone" for s in j.sites) and rng.random() < 0.5:
            j.early.append(Course("denosumab", metastatic + _days(rng, 10, 40), None, "supportive"))
        for kind in rng.sample(
            ["hypertension", "diabetes", "osteoporosis", "hypothyroidism"], rng.randint(0, 2)
        ):
            j.events.append(Event(kind, (j.diagnosis or metastatic) - _days(rng, 200, 3000)))

    def cardiac(self, j: Journey) -> None:
        """LVEF baseline before HER2 therapy, ~3-monthly on it; drops and heart failure."""
        rng = self.rng
        her2_courses = [
            c
            for c in (*j.early, *(c for ln in j.lines for c in ln.courses))
            if c.drug in _CARDIO_MONITORED
        ]
        if not her2_courses:
            return
        base = rng.randint(55, 70)
        first = min(c.start for c in her2_courses)
        j.lvef.append((first - _days(rng, 5, 25), base))
        for c in sorted(her2_courses, key=lambda c: c.start):
            end = c.end or self.as_of
            self.lvef_series(j, c.start + _days(rng, 80, 100), end, base)
        j.lvef = sorted({d: v for d, v in j.lvef}.items())
        current = j.lines[-1] if j.lines and j.lines[-1].end is None else None
        on_her2 = current is not None and any(d in _HER2_DIRECTED for d in current.drugs)
        j.lvef = [(d, v) for d, v in j.lvef if d <= self.as_of - timedelta(days=1)]
        # keep the latest LVEF clearly inside or clearly outside the 3-month window
        if on_her2 and self.chance("lvef_overdue"):
            j.lvef = [(d, v) for d, v in j.lvef if d <= self.as_of - timedelta(days=110)]
            j.tags.append("lvef-overdue")
        elif on_her2:
            j.lvef = [(d, v) for d, v in j.lvef if d <= self.as_of - timedelta(days=110)]
            j.lvef.append((self.as_of - _days(rng, 5, 70), base + rng.randint(-4, 3)))
        if j.lvef and len(j.lvef) > 1 and self.chance("lvef_drop"):
            d, _ = j.lvef[-1]
            kind = rng.choice(["under-50", "drop-16", "under-40"])
            value = {"under-50": rng.randint(41, 47), "under-40": rng.randint(28, 37)}.get(kind, 0)
            if kind == "drop-16":  # a high baseline, a drop of 18-20 points, still >= 52%
                # the whole series sits near the high baseline, so the drop is >= 16 points from
                # any baseline (the first value, the one before the current line, the maximum)
                high = rng.randint(72, 76)
                j.lvef = [(dd, high + rng.randint(-2, 1)) for dd, _ in j.lvef]
                j.lvef[0] = (j.lvef[0][0], high)
                value = high - 2 - rng.randint(18, 20)
            j.lvef[-1] = (d, value)
            j.tags.append(f"lvef-{kind}")
        # keep baseline-to-latest clear of the 16-point and 50% boundaries when no drop is drawn
        if j.lvef and not any(t.startswith("lvef-") and t != "lvef-overdue" for t in j.tags):
            j.lvef = [(d, max(min(v, base + 3), base - 8, 53)) for d, v in j.lvef]
        if rng.random() < float(self.p["heart_failure"]):
            onset = (j.lines[-1].start if j.lines else (j.metastatic_since or self.as_of)) + _days(
                rng, 20, 40
            )
            onset = min(onset, self.as_of - timedelta(days=5))
            j.events.append(Event(rng.choice(["heart-failure", "hfref", "cardiomyopathy"]), onset))
            j.tags.append("heart-failure")

    def assessments(self, j: Journey) -> None:
        """Restaging every ~3 months (improved / stable) and the progression that ends a line."""
        rng = self.rng
        for ln in j.lines:
            end = ln.progression or ln.end or self.as_of
            d = ln.start + _days(rng, 75, 100)
            while d < end - timedelta(days=20):
                j.assessments.append((d, rng.choice(["improved", "stable", "stable"])))
                d += _days(rng, 80, 100)
            if ln.progression:
                j.assessments.append((ln.progression, "worsened"))


_HER2_DIRECTED = frozenset(
    {
        "trastuzumab",
        "pertuzumab",
        "ado-trastuzumab emtansine",
        "fam-trastuzumab deruxtecan",
        "tucatinib",
        "lapatinib",
        "neratinib",
        "margetuximab",
    }
)
_CARDIO_MONITORED = frozenset(
    {"trastuzumab", "pertuzumab", "ado-trastuzumab emtansine", "fam-trastuzumab deruxtecan"}
)


def _other_kinds(d: Drawer, j: Journey) -> None:
    """Controls and data-quality cases: HER2-negative, HER2-low, equivocal, missing, early, other cancers."""
    rng, as_of = d.rng, d.as_of
    kind = j.kind
    if kind == "non-breast":
        j.cancer = rng.choice(["stomach", "stomach", "lung", "colon"])
        j.diagnosis = as_of - _days(rng, 200, 1500)
        j.metastatic_since = j.diagnosis + _days(rng, 0, 300)
        j.sites.append(Event(rng.choice(["liver", "lung", "bone"]), j.metastatic_since))
        if j.cancer == "stomach":  # HER2-positive gastric cancer: trastuzumab, then T-DXd 6.4 mg/kg
            s = j.metastatic_since + _days(rng, 14, 30)
            e = s + months(rng.uniform(5, 12))
            if e < as_of - timedelta(days=60):
                j.lines.append(
                    Line(
                        1,
                        "gastric",
                        s,
                        e,
                        [Course("trastuzumab", s, e), Course("capecitabine", s, e)],
                        e,
                        "progression",
                    )
                )
                s2 = e + _days(rng, 14, 30)
                j.lines.append(
                    Line(2, "gastric", s2, None, [Course("fam-trastuzumab deruxtecan", s2, None)])
                )
                j.assessments.append((e, "worsened"))
        j.events.append(Event("hypertension", j.diagnosis - _days(rng, 300, 2000)))
        return
    j.diagnosis = as_of - _days(rng, 60, 2500)
    if kind in ("her2-negative", "her2-low-tdxd"):
        low = kind == "her2-low-tdxd" or rng.random() < 0.5
        if low and rng.random() < 0.5:
            j.her2_tests += [
                Her2Test(j.diagnosis, "ihc", "2+", "primary"),
                Her2Test(j.diagnosis + _days(rng, 3, 12), "ish", "negative", "primary"),
            ]
        else:
            j.her2_tests.append(Her2Test(j.diagnosis, "ihc", "1+" if low else "0", "primary"))
        if rng.random() < 0.3:
            j.her2_condition = "negative"
            j.her2_condition_date = j.her2_tests[0].when
        d.hormone_receptors(j, 0.75)
        metastatic = kind == "her2-low-tdxd" or rng.random() < 0.6
        if metastatic:
            j.metastatic_since = j.diagnosis + _days(rng, 0, 900)
            if j.metastatic_since > as_of - timedelta(days=200):
                j.metastatic_since = as_of - _days(rng, 200, 400)
                j.diagnosis = min(j.diagnosis, j.metastatic_since)
            j.stage = "4" if j.metastatic_since == j.diagnosis else "2A"
            j.sites += [
                Event(s, j.metastatic_since) for s in rng.sample(["bone", "liver", "lung"], 2)
            ]
            s = j.metastatic_since + _days(rng, 14, 30)
            plan = "endocrine-only" if j.hr_positive else "chemo-only"
            e = s + months(rng.uniform(4, 8))
            if e > as_of - timedelta(days=45):
                j.lines.append(Line(1, plan, s, None, d.courses_for(j, plan, s, None)))
            else:
                j.lines.append(Line(1, plan, s, e, d.courses_for(j, plan, s, e), e, "progression"))
                j.assessments.append((e, "worsened"))
                s2 = e + _days(rng, 14, 30)
                if (
                    kind == "her2-low-tdxd"
                ):  # DESTINY-Breast04: T-DXd for HER2-low, out of scope here
                    j.lines.append(
                        Line(
                            2,
                            "her2-low-tdxd",
                            s2,
                            None,
                            [Course("fam-trastuzumab deruxtecan", s2, None)],
                        )
                    )
                else:
                    j.lines.append(
                        Line(2, "chemo-only", s2, None, d.courses_for(j, "chemo-only", s2, None))
                    )
        else:
            j.stage = rng.choice(["1A", "2A", "3A"])
        return
    # HER2-positive or unknown breast cancer that is not a full metastatic journey
    d.hormone_receptors(j, 0.55)
    if kind in ("early-only", "early-unstaged"):
        j.diagnosis = as_of - _days(rng, 60, 900)
        d.her2_positive_tests(j, j.diagnosis)
        j.stage = "" if kind == "early-unstaged" else rng.choice(["1A", "2A", "2B", "3A"])
        d.early_therapy(j, j.diagnosis + _days(rng, 14, 30), j.hr_positive)
        for c in j.early:  # courses after the snapshot are not yet given; the rest are as planned
            if c.end is not None and c.end > as_of - timedelta(days=3):
                c.end = None
        j.early = [c for c in j.early if c.start < as_of - timedelta(days=3)]
        return
    # equivocal without ISH, or HER2 missing: metastatic, possibly treated
    j.de_novo = rng.random() < 0.5
    j.metastatic_since = j.diagnosis if j.de_novo else j.diagnosis + _days(rng, 400, 1500)
    if j.metastatic_since > as_of - timedelta(days=30):
        j.metastatic_since = as_of - _days(rng, 30, 200)
        j.diagnosis = (
            j.metastatic_since if j.de_novo else j.metastatic_since - _days(rng, 400, 1500)
        )
    j.stage = "4" if j.de_novo else "2A"
    j.sites += [
        Event(s, j.metastatic_since) for s in rng.sample(["bone", "liver", "lung", "lymph-node"], 2)
    ]
    if kind == "her2-equivocal-no-ish":
        j.her2_tests.append(Her2Test(j.diagnosis, "ihc", "2+", "primary"))
    s = j.metastatic_since + _days(rng, 14, 30)
    if s < as_of - timedelta(days=10) and rng.random() < 0.6:
        plan = "thp" if kind == "her2-missing" and rng.random() < 0.5 else "chemo-only"
        j.lines.append(Line(1, plan, s, None, d.courses_for(j, plan, s, None)))


def draw(seed: int, index: int, as_of: date, kind: str | None = None) -> Journey:
    """The journey of patient `index` in the cohort `seed` (same arguments, same journey)."""
    rng = random.Random(f"her2-cds-synth:{GENERATOR_VERSION}:{seed}:{index}")
    d = Drawer(rng, as_of)
    chosen = kind or _pick(rng, {k: float(v) for k, v in catalogue()["kinds"].items()})
    j = d.person(index, chosen)
    if chosen == "her2-metastatic":
        d.her2_metastatic(j)
    else:
        _other_kinds(d, j)
    for course in [*j.early, *(c for ln in j.lines for c in ln.courses)]:
        if course.end is not None and course.end >= as_of:
            course.end = None  # planned to stop after the snapshot: running now
    j.tags.insert(0, chosen)
    return j
