"""Search parameter definitions (FHIR R4), one line each: ``name type path|path [targets]``.

Paths are dotted element paths from the resource root. ``x[x]`` is a choice element (any
``xType`` key), ``telecom(system=phone)`` keeps list items whose ``system`` is ``phone``.
Targets of a reference parameter are comma-separated; a leading ``=`` means the parameter only
indexes references to those types (FHIRPath ``where(resolve() is Patient)``).
"""

from __future__ import annotations

_PERSON = """
identifier token identifier
name string name
family string name.family
given string name.given
telecom token telecom
phone token telecom(system=phone)
email token telecom(system=email)
address string address
address-city string address.city
address-state string address.state
address-postalcode string address.postalCode
address-country string address.country
gender token gender
active token active
"""

DEFINITIONS: dict[str, str] = {
    "Patient": _PERSON + """
birthdate date birthDate
death-date date deceasedDateTime
deceased token deceased[x]
general-practitioner reference generalPractitioner Organization,Practitioner,PractitionerRole
organization reference managingOrganization Organization
link reference link.other Patient,RelatedPerson
language token communication.language
""",
    "Practitioner": _PERSON + """
communication token communication
""",
    "RelatedPerson": _PERSON + """
patient reference patient Patient
birthdate date birthDate
relationship token relationship
""",
    "PractitionerRole": """
practitioner reference practitioner Practitioner
organization reference organization Organization
role token code
specialty token specialty
identifier token identifier
active token active
location reference location Location
service reference healthcareService HealthcareService
date date period
telecom token telecom
phone token telecom(system=phone)
email token telecom(system=email)
endpoint reference endpoint Endpoint
""",
    "Organization": """
identifier token identifier
name string name|alias
type token type
active token active
partof reference partOf Organization
address string address
address-city string address.city
endpoint reference endpoint Endpoint
""",
    "Location": """
identifier token identifier
name string name|alias
status token status
operational-status token operationalStatus
type token type
organization reference managingOrganization Organization
partof reference partOf Location
address string address
address-city string address.city
endpoint reference endpoint Endpoint
""",
    "Observation": """
patient reference subject =Patient
subject reference subject
code token code
category token category
date date effective[x]
encounter reference encounter Encounter
status token status
identifier token identifier
value-quantity quantity valueQuantity
value-concept token valueCodeableConcept
value-string string valueString
value-date date valueDateTime|valuePeriod
performer reference performer
based-on reference basedOn
derived-from reference derivedFrom
has-member reference hasMember Observation,QuestionnaireResponse,MolecularSequence
part-of reference partOf
focus reference focus
specimen reference specimen Specimen
device reference device Device,DeviceMetric
method token method
data-absent-reason token dataAbsentReason
combo-code token code|component.code
component-code token component.code
component-value-quantity quantity component.valueQuantity
component-value-concept token component.valueCodeableConcept
""",
    "QuestionnaireResponse": """
patient reference subject =Patient
subject reference subject
questionnaire reference questionnaire Questionnaire
authored date authored
status token status
encounter reference encounter Encounter
author reference author Device,Practitioner,PractitionerRole,Patient,RelatedPerson,Organization
identifier token identifier
based-on reference basedOn CarePlan,ServiceRequest
part-of reference partOf Observation,Procedure
source reference source Patient,Practitioner,PractitionerRole,RelatedPerson
""",
    "MedicationAdministration": """
patient reference subject =Patient
subject reference subject Patient,Group
effective-time date effective[x]
status token status
code token medicationCodeableConcept
medication reference medicationReference Medication
context reference context Encounter,EpisodeOfCare
encounter reference context =Encounter
performer reference performer.actor Practitioner,PractitionerRole,Patient,RelatedPerson,Device
request reference request MedicationRequest
identifier token identifier
reason-given token reasonCode
reason-not-given token statusReason
device reference device Device
""",
    "MedicationRequest": """
patient reference subject =Patient
subject reference subject Patient,Group
status token status
intent token intent
code token medicationCodeableConcept
medication reference medicationReference Medication
encounter reference encounter Encounter
requester reference requester
authoredon date authoredOn
identifier token identifier
category token category
priority token priority
intended-performer reference performer
intended-dispenser reference dispenseRequest.performer Organization
date date dosageInstruction.timing
""",
    "MedicationStatement": """
patient reference subject =Patient
subject reference subject Patient,Group
status token status
code token medicationCodeableConcept
medication reference medicationReference Medication
effective date effective[x]
context reference context Encounter,EpisodeOfCare
category token category
identifier token identifier
source reference informationSource
""",
    "MedicationDispense": """
patient reference subject =Patient
subject reference subject Patient,Group
status token status
code token medicationCodeableConcept
medication reference medicationReference Medication
prescription reference authorizingPrescription MedicationRequest
performer reference performer.actor
context reference context Encounter,EpisodeOfCare
whenhandedover date whenHandedOver
whenprepared date whenPrepared
identifier token identifier
""",
    "Medication": """
code token code
identifier token identifier
status token status
form token form
lot-number token batch.lotNumber
expiration-date date batch.expirationDate
ingredient-code token ingredient.itemCodeableConcept
ingredient reference ingredient.itemReference Substance,Medication
manufacturer reference manufacturer Organization
""",
    "Encounter": """
patient reference subject =Patient
subject reference subject Patient,Group
date date period
status token status
class token class
type token type
identifier token identifier
episode-of-care reference episodeOfCare EpisodeOfCare
participant reference participant.individual Practitioner,PractitionerRole,RelatedPerson
practitioner reference participant.individual =Practitioner
participant-type token participant.type
location reference location.location Location
service-provider reference serviceProvider Organization
reason-code token reasonCode
reason-reference reference reasonReference
based-on reference basedOn ServiceRequest
part-of reference partOf Encounter
diagnosis reference diagnosis.condition Condition,Procedure
appointment reference appointment Appointment
account reference account Account
special-arrangement token hospitalization.specialArrangement
""",
    "EpisodeOfCare": """
patient reference patient Patient
status token status
type token type
date date period
care-manager reference careManager Practitioner
identifier token identifier
organization reference managingOrganization Organization
condition reference diagnosis.condition Condition
incoming-referral reference referralRequest ServiceRequest
""",
    "DocumentReference": """
patient reference subject =Patient
subject reference subject Patient,Practitioner,Group,Device
type token type
category token category
date date date
status token status
author reference author Practitioner,PractitionerRole,Organization,Device,Patient,RelatedPerson
authenticator reference authenticator Practitioner,PractitionerRole,Organization
custodian reference custodian Organization
encounter reference context.encounter Encounter,EpisodeOfCare
relatesto reference relatesTo.target DocumentReference
relation token relatesTo.code
security-label token securityLabel
identifier token masterIdentifier|identifier
period date context.period
event token context.event
facility token context.facilityType
setting token context.practiceSetting
related reference context.related
description string description
contenttype token content.attachment.contentType
format token content.format
language token content.attachment.language
location uri content.attachment.url
""",
    "CareTeam": """
patient reference subject =Patient
subject reference subject Patient,Group
participant reference participant.member
status token status
category token category
encounter reference encounter Encounter
date date period
identifier token identifier
""",
    "Questionnaire": """
url uri url
name string name
title string title
status token status
code token item.code
version token version
identifier token identifier
date date date
publisher string publisher
description string description
subject-type token subjectType
definition uri item.definition
jurisdiction token jurisdiction
effective date effectivePeriod
""",
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
