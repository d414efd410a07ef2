"""Synthetic HER2-positive patient journeys: the generator and its ground truth.

`generate` writes seeded, reproducible FHIR R4 Bundles with an answer file each. It imports
nothing of the service; the demo and the population run that drive the service with these
journeys live on the top floor (`her2cds_cli.demo`, `her2cds_cli.population`).
"""

from synthetic.draw_journey import draw
from synthetic.generate import generate_cohort, patient_bundle

__all__ = ["draw", "generate_cohort", "patient_bundle"]
