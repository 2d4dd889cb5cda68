"""The FHIR R4 REST layer: routing, interactions, search, bundles, capability, outcomes."""
