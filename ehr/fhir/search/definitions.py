"""Search parameter definitions (FHIR R4), one line each: ``name type path|path [targets]``.

Paths are dotted element paths from the resource root. ``x[x]`` is a choice element (any
``xType`` key), ``telecom(system=phone)`` keeps list items whose ``system`` is ``phone``.
Targets of a reference parameter are comma-separated; a leading ``=`` means the parameter only
indexes references to those types (FHIRPath ``where(resolve() is Patient)``).
"""

from __future__ import annotations

from ehr.fhir.search.definitions_care import CARE_DEFINITIONS

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
    **CARE_DEFINITIONS,
}
