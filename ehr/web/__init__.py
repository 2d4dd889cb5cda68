"""Server-rendered pages for clinicians, therapists, compliance officers and administrators.

Pages read and write clinical data only through the FHIR router (``fhir_calls``), so the UI
sees exactly what the API would show the same user, and every access is audited the same way.
"""
