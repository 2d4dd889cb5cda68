"""Who may do what: role x resource type x interaction, as one table.

Permissions use the SMART v2 letters: c create, r read (read, vread, instance history),
u update, d delete, s search (search, type and system history). A type's own row wins over
its group row. The policy also intersects every decision with the token's scopes, and limits
clinicians to their care team's patients (``policy``).
"""

from __future__ import annotations

from ehr.auth.roles import Role

CLINICAL = "@clinical"  # every type that holds patient data
DIRECTORY = "@directory"  # people, places, products and forms: no patient data

DIRECTORY_TYPES = frozenset({
    "Practitioner", "PractitionerRole", "Organization", "Location", "HealthcareService",
    "Endpoint", "Medication", "MedicationKnowledge", "Substance", "Questionnaire", "ValueSet",
    "CodeSystem", "ConceptMap", "NamingSystem", "StructureDefinition", "SearchParameter",
    "OperationDefinition", "CapabilityStatement", "ImplementationGuide", "Library",
    "PlanDefinition", "ActivityDefinition", "ObservationDefinition", "Measure",
})
# Never reachable through the FHIR write path; the audit trail fills it.
AUDIT_TYPES = frozenset({"AuditEvent"})

POLICY: dict[Role, dict[str, str]] = {
    Role.PHYSICIAN: {CLINICAL: "cruds", DIRECTORY: "cruds", "AuditEvent": ""},
    Role.NURSE: {CLINICAL: "rs", DIRECTORY: "rs", "AuditEvent": "",
                 # Vitals are corrected (entered-in-error), never deleted, by nurses.
                 "Observation": "crus", "MedicationAdministration": "crus",
                 # Nurses run sessions (arrival, monitoring) and record adverse events.
                 "Encounter": "crus", "AdverseEvent": "crus"},
    Role.THERAPIST: {CLINICAL: "rs", DIRECTORY: "rs", "AuditEvent": "",
                     "QuestionnaireResponse": "crus", "DocumentReference": "crus",
                     "Composition": "crus", "Flag": "crus"},
    Role.COMPLIANCE: {"AuditEvent": "rs", "Provenance": "rs",
                      "DocumentReference": "rs", "Composition": "rs"},
    Role.ADMIN: {},
}

# Roles that see every patient's records of the types they may read (no care-team limit).
ORGANIZATION_WIDE = frozenset({Role.COMPLIANCE})

# (role, type) pairs served as metadata only: compliance sees that a note exists (type, date,
# author, status) but never its content.
METADATA_ONLY: dict[tuple[Role, str], tuple[str, ...]] = {
    (Role.COMPLIANCE, "DocumentReference"): (
        "resourceType", "id", "meta", "status", "docStatus", "type", "category", "subject",
        "date", "author", "authenticator", "custodian", "relatesTo", "securityLabel"),
    (Role.COMPLIANCE, "Composition"): (
        "resourceType", "id", "meta", "status", "type", "category", "subject", "encounter",
        "date", "author", "title", "confidentiality", "attester", "custodian", "relatesTo"),
}

INTERACTION_PERMISSION = {
    "read": "r", "vread": "r", "history-instance": "r", "history": "r",
    "search": "s", "search-type": "s", "search-system": "s", "history-type": "s",
    "history-system": "s", "create": "c", "update": "u", "delete": "d",
}


def group_of(rtype: str) -> str:
    return DIRECTORY if rtype in DIRECTORY_TYPES else CLINICAL


def role_permissions(role: Role, rtype: str) -> str:
    """The letters ``role`` holds on ``rtype`` (empty string: nothing)."""
    row = POLICY[role]
    if rtype in row:
        return row[rtype]
    if rtype in AUDIT_TYPES:
        return ""
    return row.get(group_of(rtype), "")
