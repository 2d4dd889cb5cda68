"""The Schedule III controlled-substance ledger (21 CFR 1304, practitioner registrant).

Per registered location (a FHIR Location with its DEA number): receipts, administrations
(drawn when a MedicationAdministration is charted, ``draws``), witnessed waste, destruction
(DEA Form 41), theft and loss with their DEA deadlines, and physical counts reconciled per lot
against the running balance. The tables are append-only; ``docs/ledger.md`` has the whole story.
"""
