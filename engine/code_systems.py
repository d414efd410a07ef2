"""The code systems' URLs the house reads and writes, each defined once.

FHIR's canonical URLs (https://terminology.hl7.org/external_terminologies.html) and the
service's own code system for override reasons.
"""

from __future__ import annotations

SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
ICD10_CM = "http://hl7.org/fhir/sid/icd-10-cm"
UCUM = "http://unitsofmeasure.org"
# Why a clinician overrides a card (CDS Hooks overrideReasons): the service's own codes.
OVERRIDE_SYSTEM = "http://her2cds.org/CodeSystem/override-reason"
