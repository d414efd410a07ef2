"""What the next-line rules know about one patient: ILD, brain metastases, the agents that failed
and how (progression in a metastatic line, or relapse soon after an early-setting agent), and the
current line the next one follows."""

from __future__ import annotations

from dataclasses import dataclass

from engine.history import History
from engine.knowledge import Knowledge
from engine.model import PatientRecord, Regimen


@dataclass(frozen=True)
class Brain:
    """Active brain metastases and whether the recorded disease is predominantly CNS."""

    active: bool
    predominant: bool
    source_ids: tuple[str, ...]
    recorded: bool = False  # any brain metastasis on record, active or not


def has_ild(record: PatientRecord) -> bool:
    return bool(record.conditions_of("ild"))


def brain_status(record: PatientRecord) -> Brain:
    brain = [m for m in record.metastases if m.concept == "brain-metastasis" and m.active]
    elsewhere = [
        m for m in record.metastases if m.concept == "metastasis" and m.active and m.site != "brain"
    ]
    recorded = any(m.concept == "brain-metastasis" for m in record.metastases)
    return Brain(
        bool(brain), bool(brain) and not elsewhere, tuple(m.source_id for m in brain), recorded
    )


def ild_excluded(kb: Knowledge, regimen: Regimen) -> bool:
    """The regimen contains an agent not offered with ILD on record (agents.ild_excluded)."""
    return not kb.agents("ild_excluded").isdisjoint(regimen.drugs)


@dataclass(frozen=True)
class Ctx:
    record: PatientRecord
    kb: Knowledge
    hist: History
    jurisdiction: str
    ild: bool
    brain: Brain
    last_tki: tuple[str, ...]
    # the drugs of the ongoing line when the next line is for progression on it: the current
    # line is not the next, so its key agents are not offered again (outside clinical review N11)
    current: frozenset[str] = frozenset()

    def name(self, drug: str) -> str:
        info = self.kb.drug(drug)
        return (info.short or info.name) if info else drug

    def progressed_on(self, drug: str) -> str | None:
        """Where the disease progressed on this drug in the metastatic setting, if it did."""
        for ln in self.record.lines:
            if ln.ended_in_progression and drug in ln.drugs:
                return f"line {ln.number}"
        if any(e.drug == drug and e.stopped_for_progression for e in self.record.exposures):
            return "stopped for progression"
        return None

    def failure(self, drug: str) -> str:
        """How this failed agent failed, in the words a clinician would use."""
        if self.progressed_on(drug) is not None or drug not in self.hist.refractory:
            return f"disease progressed on {drug}"
        trials = self.kb.parameters.get("early_setting_trials", {})
        info = trials.get(drug)
        months = self.hist.relapse_threshold
        within = f"within {months:g} months" if months is not None else "soon after"
        if info:
            return f"relapsed {within} of {info['setting']} {self.name(drug)} ({info['trial']})"
        return f"relapsed {within} of (neo)adjuvant {self.name(drug)}"

    def current_words(self, drugs: list[str]) -> str:
        last = self.hist.last_line
        where = f"line {last.number}" if last is not None else "the current line"
        names = " + ".join(self.name(d) for d in drugs)
        return (
            f"{names} is being given now ({where}, ongoing): the next line is for progression "
            "on it, so it is not offered as the next line"
        )
