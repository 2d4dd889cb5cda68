"""Ketamine-assisted therapy rules: screening, eligibility, dosing, ledger, sessions, notes.

Rules here see FHIR resources as plain dicts and plug into the one write path through
``ehr.store.hooks``; they never import the REST layer.
"""
