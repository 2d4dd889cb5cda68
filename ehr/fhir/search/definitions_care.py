"""Search parameter definitions (FHIR R4) for conditions, care plans, events, finance and
workflow types, in the line format described in ``definitions``."""

from __future__ import annotations

CARE_DEFINITIONS: dict[str, str] = {
    "Condition": """
patient reference subject =Patient
subject reference subject Patient,Group
code token code
category token category
clinical-status token clinicalStatus
verification-status token verificationStatus
severity token severity
body-site token bodySite
encounter reference encounter Encounter
onset-date date onsetDateTime|onsetPeriod
abatement-date date abatementDateTime|abatementPeriod
recorded-date date recordedDate
asserter reference asserter Practitioner,PractitionerRole,Patient,RelatedPerson
evidence token evidence.code
evidence-detail reference evidence.detail
stage token stage.summary
identifier token identifier
""",
    "AllergyIntolerance": """
patient reference patient Patient
code token code|reaction.substance
clinical-status token clinicalStatus
verification-status token verificationStatus
category token category
criticality token criticality
type token type
date date recordedDate
last-date date lastOccurrence
onset date reaction.onset
severity token reaction.severity
manifestation token reaction.manifestation
route token reaction.exposureRoute
recorder reference recorder
asserter reference asserter
identifier token identifier
""",
    "Procedure": """
patient reference subject =Patient
subject reference subject Patient,Group
code token code
category token category
date date performed[x]
status token status
encounter reference encounter Encounter
performer reference performer.actor
location reference location Location
reason-code token reasonCode
reason-reference reference reasonReference
based-on reference basedOn CarePlan,ServiceRequest
part-of reference partOf Procedure,Observation,MedicationAdministration
identifier token identifier
""",
    "Composition": """
patient reference subject =Patient
subject reference subject
type token type
category token category
date date date
status token status
author reference author Practitioner,PractitionerRole,Device,Patient,RelatedPerson,Organization
attester reference attester.party Patient,RelatedPerson,Practitioner,PractitionerRole,Organization
encounter reference encounter Encounter
title string title
section token section.code
entry reference section.entry
period date event.period
context token event.code
confidentiality token confidentiality
related-ref reference relatesTo.targetReference Composition
identifier token identifier
""",
    "Provenance": """
target reference target
patient reference target =Patient
agent reference agent.who Practitioner,PractitionerRole,RelatedPerson,Patient,Device,Organization
agent-role token agent.role
agent-type token agent.type
recorded date recorded
when date occurredDateTime
entity reference entity.what
location reference location Location
signature-type token signature.type
""",
    "Consent": """
patient reference patient Patient
status token status
category token category
date date dateTime
identifier token identifier
scope token scope
action token provision.action
actor reference provision.actor.reference
consentor reference performer
organization reference organization Organization
period date provision.period
purpose token provision.purpose
security-label token provision.securityLabel
data reference provision.data.reference
source-reference reference sourceReference
""",
    "CarePlan": """
patient reference subject =Patient
subject reference subject Patient,Group
status token status
intent token intent
category token category
date date period
encounter reference encounter Encounter
care-team reference careTeam CareTeam
condition reference addresses Condition
goal reference goal Goal
based-on reference basedOn CarePlan
replaces reference replaces CarePlan
part-of reference partOf CarePlan
performer reference activity.detail.performer
activity-code token activity.detail.code
activity-date date activity.detail.scheduled[x]
activity-reference reference activity.reference
instantiates-canonical reference instantiatesCanonical
instantiates-uri uri instantiatesUri
identifier token identifier
""",
    "Flag": """
patient reference subject =Patient
subject reference subject
status token status
date date period
encounter reference encounter Encounter
author reference author Device,Organization,Patient,Practitioner,PractitionerRole
identifier token identifier
""",
    "DetectedIssue": """
patient reference patient Patient
code token code
identified date identified[x]
author reference author Practitioner,PractitionerRole,Device
implicated reference implicated
identifier token identifier
""",
    "AdverseEvent": """
subject reference subject Patient,Group,Practitioner,RelatedPerson
patient reference subject =Patient
date date date
actuality token actuality
category token category
event token event
recorder reference recorder Patient,Practitioner,PractitionerRole,RelatedPerson
substance reference suspectEntity.instance
seriousness token seriousness
severity token severity
location reference location Location
resultingcondition reference resultingCondition Condition
study reference study ResearchStudy
""",
    "AuditEvent": """
date date recorded
agent reference agent.who
agent-name string agent.name
agent-role token agent.role
address string agent.network.address
policy uri agent.policy
entity reference entity.what
entity-name string entity.name
entity-type token entity.type
entity-role token entity.role
patient reference agent.who|entity.what =Patient
subtype token subtype
outcome token outcome
type token type
action token action
source reference source.observer
site token source.site
""",
    "DiagnosticReport": """
patient reference subject =Patient
subject reference subject Patient,Group,Device,Location
code token code
category token category
date date effective[x]
issued date issued
status token status
encounter reference encounter Encounter
result reference result Observation
performer reference performer
results-interpreter reference resultsInterpreter
based-on reference basedOn
specimen reference specimen Specimen
conclusion token conclusionCode
identifier token identifier
""",
    "Immunization": """
patient reference patient Patient
date date occurrence[x]
status token status
status-reason token statusReason
vaccine-code token vaccineCode
lot-number string lotNumber
manufacturer reference manufacturer Organization
location reference location Location
performer reference performer.actor
reason-code token reasonCode
target-disease token protocolApplied.targetDisease
identifier token identifier
""",
    "Claim": """
patient reference patient Patient
identifier token identifier
created date created
status token status
use token use
priority token priority
provider reference provider
insurer reference insurer Organization
enterer reference enterer
encounter reference item.encounter Encounter
""",
    "ExplanationOfBenefit": """
patient reference patient Patient
identifier token identifier
created date created
status token status
provider reference provider
claim reference claim Claim
coverage reference insurance.coverage Coverage
encounter reference item.encounter Encounter
""",
    "ServiceRequest": """
patient reference subject =Patient
subject reference subject Patient,Group,Location,Device
code token code
category token category
status token status
intent token intent
priority token priority
authored date authoredOn
occurrence date occurrence[x]
encounter reference encounter Encounter
requester reference requester
performer reference performer
based-on reference basedOn
identifier token identifier
""",
    "Goal": """
patient reference subject =Patient
subject reference subject Patient,Group,Organization
lifecycle-status token lifecycleStatus
achievement-status token achievementStatus
category token category
start-date date startDate
target-date date target.dueDate
identifier token identifier
""",
    "Coverage": """
patient reference beneficiary Patient
beneficiary reference beneficiary Patient
payor reference payor Organization,Patient,RelatedPerson
subscriber reference subscriber Patient,RelatedPerson
policy-holder reference policyHolder Patient,RelatedPerson,Organization
status token status
type token type
identifier token identifier
""",
    "Task": """
patient reference for =Patient
subject reference for
owner reference owner
requester reference requester
status token status
business-status token businessStatus
intent token intent
priority token priority
code token code
focus reference focus
encounter reference encounter Encounter
based-on reference basedOn
part-of reference partOf Task
authored-on date authoredOn
modified date lastModified
period date executionPeriod
identifier token identifier
""",
    "Appointment": """
patient reference participant.actor =Patient
actor reference participant.actor
practitioner reference participant.actor =Practitioner
location reference participant.actor =Location
date date start
status token status
service-type token serviceType
appointment-type token appointmentType
identifier token identifier
""",
    "Communication": """
patient reference subject =Patient
subject reference subject Patient,Group
sender reference sender
recipient reference recipient
sent date sent
received date received
status token status
category token category
encounter reference encounter Encounter
identifier token identifier
""",
    "Group": """
identifier token identifier
type token type
code token code
actual token actual
member reference member.entity
""",
    "Device": """
patient reference patient Patient
organization reference owner Organization
type token type
status token status
identifier token identifier
""",
    "List": """
patient reference subject =Patient
subject reference subject
code token code
status token status
title string title
date date date
item reference entry.item
encounter reference encounter Encounter
identifier token identifier
""",
}
