"""Synthetic HER2-positive patient journeys: generator, ground truth, demo and population run.

`generate` writes seeded, reproducible FHIR R4 Bundles with an answer file each; `population`
runs the engine over many patients in parallel and reports agreement with the answers; `demo`
is a newcomer's first run against the real HTTP service. Only the command line imports this.
"""

from synthetic.draw_journey import draw
from synthetic.generate import generate_cohort, patient_bundle

__all__ = ["draw", "generate_cohort", "patient_bundle"]
