"""The expected next regimen: CLINICAL.md section 3 applied to a journey, for the answer file.

Written from CLINICAL.md's text, never by calling the engine (engine/next_line.py); the
knowledge base is read as data (regimen drugs, key agents, approvals, the guideline sequence
rows, rule parameters). Where the text leaves the choice open, `Choice.acceptable` carries
every accepted regimen and `Choice.why` says why.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.knowledge import Knowledge
from synthetic.journey import Journey

TDXD = "fam-trastuzumab deruxtecan"
TDM1 = "ado-trastuzumab emtansine"
# CLINICAL.md section 2 rule 6 (revised): the (neo)adjuvant HER2-directed agents an early relapse
# is measured from: trastuzumab, pertuzumab, T-DM1 (KATHERINE), T-DXd and neratinib
EARLY_RELAPSE_AGENTS = frozenset({"trastuzumab", "pertuzumab", TDM1, TDXD, "neratinib"})


@dataclass(frozen=True)
class Choice:
    expected: str | None
    acceptable: tuple[str, ...]
    why: tuple[str, ...]


class Chooser:
    """CLINICAL.md section 3, written from the text (not from engine/next_line.py)."""

    def __init__(self, j: Journey, kb: Knowledge, jurisdiction: str = "FDA") -> None:
        self.j, self.kb, self.jurisdiction = j, kb, jurisdiction
        her2 = [ln for ln in j.lines if any(kb.is_her2_directed(d) for d in ln.drugs)]
        self.her2_lines = len(her2)
        self.early_relapse, self.relapse_months = self._early_relapse()
        self.prior = self.her2_lines + (1 if self.early_relapse else 0)
        self.received = {c.drug for c in j.early if c.setting == "early"} | {
            d for ln in j.lines for d in ln.drugs
        }
        # the on-progression advice for an ongoing line assumes progression on it: its agents
        # then count as failed ("never re-offer an agent that already failed")
        current = j.lines[-1] if j.lines and j.lines[-1].end is None else None
        self.failed = {
            d
            for ln in j.lines
            if ln.progression or ln is current
            for d in ln.drugs
            if kb.is_her2_directed(d)
        }
        if self.early_relapse:
            # relapse within 12 months of the early agents: they failed ("trastuzumab-refractory";
            # "not THP and not T-DM1 again" after KATHERINE T-DM1, CLINICAL.md 2.6)
            self.failed |= {
                c.drug for c in j.early if c.setting == "early" and c.drug in EARLY_RELAPSE_AGENTS
            }
        self.tdxd_naive = TDXD not in self.received
        last = j.lines[-1] if j.lines else None
        self.last_tki = bool(last and any(self._tki(d) for d in last.drugs))
        self.cns = cns_predominant(j)

    def _tki(self, drug: str) -> bool:
        info = self.kb.drug(drug)
        return bool(info and info.drug_class == "her2-tki")

    def _early_relapse(self) -> tuple[bool, float | None]:
        j = self.j
        early = [
            c for c in j.early if c.drug in EARLY_RELAPSE_AGENTS and c.end and c.setting == "early"
        ]
        if not early or j.metastatic_since is None or j.de_novo:
            return False, None
        last_end = max(c.end for c in early if c.end)
        only_t = {c.drug for c in early} == {"trastuzumab"}  # NCCN's 6-month variant
        key = "early_relapse_months_trastuzumab_only" if only_t else "early_relapse_months"
        threshold = float(self.kb.param("lines", key))
        gap = (j.metastatic_since - last_end).days / 30.4375
        return gap <= threshold, round(gap, 1)

    def regimen_tki(self, rid: str) -> bool:
        return self.kb.regimens[rid].tki

    def viable(self, rid: str, ild: bool) -> bool:
        rule = self.kb.regimens[rid]
        if ild and TDXD in rule.regimen.drugs:
            return False  # ILD: T-DXd not offered
        if rule.hr_positive_only and not self.j.hr_positive:
            return False
        return self.prior >= rule.min_prior_her2_lines

    def flags(self, rid: str, received_at_row_1: bool = False) -> dict[str, int]:
        rule = self.kb.regimens[rid]
        counts_received = self.prior >= 2 or (received_at_row_1 and self.prior == 1)
        return {
            "failed": int(any(a in self.failed for a in rule.key_agents)),
            "unapproved": int(self.jurisdiction not in rule.regimen.approvals),
            "tki": int(self.last_tki and rule.tki),
            # "if never given" / "not yet given" are rules of rows 2 and 3+ only: at rows 0-1 an
            # agent given before (e.g. adjuvant pertuzumab, late relapse) does not demote
            "received": int(counts_received and any(a in self.received for a in rule.key_agents)),
            "cns": 0
            if (self.cns and rid == "tucatinib-trastuzumab-capecitabine" and self.prior >= 1)
            else 1,
        }

    # Orderings of the modifiers. CLINICAL.md lists the modifiers without saying which wins when
    # two apply (e.g. a TKI-after-TKI demotion against "never given"), so every ordering that
    # keeps "never re-offer a failed agent" first is accepted; the first one is the expected.
    ORDERINGS = (
        ("failed", "unapproved", "tki", "received", "cns"),
        ("failed", "tki", "received", "unapproved", "cns"),
        ("failed", "unapproved", "received", "tki", "cns"),
        ("failed", "unapproved", "tki", "cns", "received"),
    )

    def _rank(self, ids: list[str], ordering: tuple[str, ...], row_1: bool = False) -> list[str]:
        return sorted(
            ids, key=lambda rid: (*(self.flags(rid, row_1)[k] for k in ordering), ids.index(rid))
        )

    def choose(self, ild: bool) -> Choice:
        choice = self._choose(ild)
        triplet = "tucatinib-trastuzumab-capecitabine"
        brain = any(
            s.kind == "brain" and s.status in ("active", "recurrence", "relapse")
            for s in self.j.sites
        )
        if (
            brain
            and self.prior >= 1
            and choice.expected is not None
            and TDXD not in self.kb.regimens[choice.expected].regimen.drugs
            and triplet in self.kb.regimens
            and self.viable(triplet, ild)
            and not any(self.flags(triplet)[k] for k in ("failed", "tki", "unapproved"))
            and triplet not in choice.acceptable
        ):
            # Tolerance: active brain metastases with extracranial disease when T-DXd is out
            # (failed, ILD): CLINICAL.md keeps T-DXd preferred for that case but does not say
            # what replaces it; the tucatinib triplet (HER2CLIMB, brain metastases) is accepted.
            return Choice(
                choice.expected,
                (*choice.acceptable, triplet),
                (*choice.why, "active brain metastases, T-DXd out: tucatinib triplet accepted"),
            )
        return choice

    def _tdxd_never_skipped(self, ild: bool, why: list[str]) -> Choice | None:
        """CLINICAL.md section 3 (revised): after any HER2-directed line, a T-DXd-naive patient
        without ILD gets T-DXd as preferred, whatever else she had; rows 2 and 3 are for
        patients who already had T-DXd. With ILD, T-DM1 takes T-DXd's place."""
        if self.prior < 1 or not self.tdxd_naive:
            return None
        triplet = "tucatinib-trastuzumab-capecitabine"
        if not ild:
            if "tdxd" not in self.kb.regimens or not self.viable("tdxd", ild):
                return None
            expected, acceptable = "tdxd", ["tdxd"]
            if (
                self.cns
                and triplet in self.kb.regimens
                and self.viable(triplet, ild)
                and not any(self.flags(triplet)[k] for k in ("failed", "tki", "unapproved"))
            ):
                # Tolerance: predominantly CNS disease prefers the tucatinib triplet (modifier
                # "active brain metastases", row 1's alternative), T-DXd is never skipped:
                # CLINICAL.md does not rank the two modifiers, both are accepted
                expected, acceptable = triplet, [triplet, "tdxd"]
            why.append("T-DXd never received, no ILD: T-DXd is never skipped")
            return Choice(expected, tuple(acceptable), tuple(why))
        tdm1_free = (
            self.prior >= 2
            and "tdm1" in self.kb.regimens
            and self.viable("tdm1", ild)
            and not any(self.flags("tdm1")[k] for k in ("failed", "unapproved", "received"))
        )
        if tdm1_free:
            # ILD at row 2 or later: T-DM1 "takes T-DXd's place"; the row's own ranking is
            # accepted too (CLINICAL.md says so for line 2 only)
            ranked = self._choose_rows(ild, why)
            return Choice(
                "tdm1",
                tuple(dict.fromkeys(("tdm1", *ranked.acceptable))),
                (*ranked.why, "ILD: T-DM1 in T-DXd's place"),
            )
        return None

    def _choose(self, ild: bool) -> Choice:
        why = [
            f"{self.prior} prior HER2-directed metastatic line(s)"
            + (" (incl. early relapse)" if self.early_relapse else "")
        ]
        never_skipped = self._tdxd_never_skipped(ild, why)
        if never_skipped is not None:
            return never_skipped
        return self._choose_rows(ild, why)

    def _choose_rows(self, ild: bool, why_in: list[str]) -> Choice:
        kb = self.kb
        rows = sorted(kb.sequence, key=lambda s: s.prior_her2_lines)
        top_row = rows[-1].prior_her2_lines
        why = list(why_in)
        if self.prior < top_row:
            step = kb.step_for(self.prior)
            ids = [r for r in (step.preferred, *step.alternatives) if self.viable(r, ild)]
            tops = [self._rank(ids, o)[0] for o in self.ORDERINGS if ids]
            # Tolerance (row 1): whether an agent given before (T-DM1 in KATHERINE) demotes an
            # alternative here is open in CLINICAL.md ("counts as received" is stated, its
            # effect on line 2 is not): both readings are accepted.
            tops += [self._rank(ids, o, True)[0] for o in self.ORDERINGS if ids]
            expected = tops[0] if tops else None
            return Choice(expected, tuple(dict.fromkeys(tops)), tuple(why))
        # 3 or more: "whatever of the above was not yet given" (unranked in CLINICAL.md), else the
        # ranked alternatives of the last row.
        # "the above": the preferred regimen of each earlier row, then the later-line
        # alternatives of rows 1-2 (row 0's alternative, T-DXd + pertuzumab, is first-line only)
        above: list[str] = []
        for r in [s.preferred for s in rows[:-1]] + [a for s in rows[1:-1] for a in s.alternatives]:
            if r not in above:
                above.append(r)
        fresh = [r for r in above if self.viable(r, ild) and self.flags(r)["received"] == 0]
        step = rows[-1]
        ids = [r for r in (step.preferred, *step.alternatives) if self.viable(r, ild)]
        ranked = list(dict.fromkeys(self._rank(ids, o)[0] for o in self.ORDERINGS if ids))
        if not fresh:
            why.append("3+: everything above already given: the ranked later-line options")
            return Choice(ranked[0] if ranked else None, tuple(ranked), tuple(why))

        def demotions(r: str) -> tuple[int, ...]:
            return tuple(self.flags(r)[k] for k in ("failed", "unapproved", "tki"))

        best = min(demotions(r) for r in fresh)
        acceptable = [r for r in fresh if demotions(r) == best]
        expected = sorted(
            acceptable,
            key=lambda r: (
                self.flags(r)["cns"],
                self.kb.regimens[r].key_agents == ("pertuzumab",),  # limited evidence after 1L
                above.index(r),
            ),
        )[0]
        why.append("3+: a regimen not yet given (CLINICAL.md leaves their order open)")
        pertuzumab_only = all(self.kb.regimens[r].key_agents == ("pertuzumab",) for r in acceptable)
        if any(best) or pertuzumab_only:
            # Tolerance: the regimens not yet given are all demoted (TKI after TKI, not approved)
            # or only pertuzumab-based ("limited evidence" beyond first line): CLINICAL.md does
            # not say whether "not yet given" outranks those modifiers, so the ranked later-line
            # choice is accepted too.
            acceptable += [r for r in ranked if r not in acceptable]
            why.append(
                "3+: 'not yet given' conflicts with a modifier: ranked later-line choice accepted"
            )
        return Choice(expected, tuple(acceptable), tuple(why))


def cns_predominant(j: Journey) -> bool:
    active = [
        s
        for s in j.sites
        if s.status in ("active", "recurrence", "relapse") and s.verification == "confirmed"
    ]
    brain = [s for s in active if s.kind == "brain"]
    return bool(brain) and len(brain) == len(active)


def has_ild(j: Journey) -> bool:
    return any(
        e.kind.startswith("ild") and e.verification not in ("refuted", "entered-in-error")
        for e in j.events
    )
