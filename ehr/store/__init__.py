"""Versioned FHIR resource storage: current versions, immutable history, search index."""
