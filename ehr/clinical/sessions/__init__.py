"""Medically supervised sessions: lifecycle, vitals flowsheet, schedule, discharge, REMS form.

Protocol data (thresholds, schedules, observation times, REMS due days) lives in
``ehr/clinical/protocols/monitoring.json``; see docs/sessions.md.
"""
