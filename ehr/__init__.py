"""ehr: a FHIR R4 clinical record service for ketamine-assisted therapy programs."""

__version__ = "0.1.0"
