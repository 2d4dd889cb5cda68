"""JSON/CSV endpoints outside FHIR (``/api``): reports and exports built on the services."""
