"""What happened to each demo patient, stage by stage, on the clinic's calendar (days before
today, local clinic time)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from zoneinfo import ZoneInfo

from ehr.clinical.ledger.operations import LedgerOperations
from ehr.clinical.sessions.phases import session_encounter
from ehr.demo import course, ledger, patients, screening
from ehr.demo.clinic import Clinic
from ehr.demo.course import Course, Dosed
from ehr.demo.patients import Person

# Self-report totals over a course (PHQ-9, GAD-7, PCL-5), improving session by session.
PHQ9 = (19, 14, 10, 6)
GAD7 = (15, 11, 8, 5)
PCL5 = (52, 41, 31, 22)
NO_REVIEW_ITEMS: frozenset[str] = frozenset()


@dataclass
class Calendar:
    """Instants (microseconds) of a local day and time, relative to today in the clinic."""

    zone: ZoneInfo
    today: dt.date = field(init=False)

    def __post_init__(self) -> None:
        self.today = dt.datetime.now(self.zone).date()

    def __call__(self, day: int, hour: int = 9, minute: int = 0) -> int:
        when = dt.datetime.combine(self.today + dt.timedelta(days=day), dt.time(hour, minute),
                                   self.zone)
        return int(when.timestamp()) * 1_000_000

    def date(self, day: int) -> dt.date:
        return self.today + dt.timedelta(days=day)


@dataclass
class Story:
    clinic: Clinic
    day: Calendar
    ops: LedgerOperations
    person: Person
    patient: str = ""
    episode: str = ""
    sessions: list[Dosed] = field(default_factory=list)

    # -- steps ----------------------------------------------------------------------------

    def scores(self, day: int, step: int, encounter: str | None = None,
               fixed: dict[str, dict[str, int]] | None = None) -> None:
        totals = {"phq-9": PHQ9[step], "gad-7": GAD7[step]}
        if self.person.diagnosis == patients.PTSD:
            totals["pcl-5"] = PCL5[step]
        screening.submit_scores(self.clinic, self.patient, self.day(day, 8, 40), totals,
                                encounter=encounter, fixed=fixed)

    def screen(self, day: int, *, yes: frozenset[str] = NO_REVIEW_ITEMS) -> None:
        """Step 1: self-reports, the C-SSRS and the physician's medical checklist."""
        self.scores(day, 0)
        screening.submit_cssrs(self.clinic, self.patient, self.day(day, 8, 55))
        screening.submit_checklist(self.clinic, self.patient, self.day(day, 10),
                                   systolic=self.person.systolic,
                                   diastolic=self.person.diastolic, yes=yes)

    def decide(self, day: int, status: str, justification: str | None = None) -> None:
        screening.decide(self.clinic, self.patient, self.day(day, 16), status, justification)
        if status == "eligible":
            patients.set_episode(self.clinic, self.episode, "active", self.day(day, 16, 10))
        elif status == "not-eligible":
            patients.set_episode(self.clinic, self.episode, "cancelled", self.day(day, 16, 10))

    def course(self, order_day: int, *, esketamine: bool = False) -> Course:
        p = self.person
        order = course.order(self.clinic, self.patient, self.day(order_day, 16, 20),
                             esketamine=esketamine)
        return Course(self.patient, self.episode, order, p.kg, p.systolic, p.diastolic,
                      p.heart_rate, esketamine)

    def session(self, c: Course, day: int, hour: int = 9) -> Dosed:
        dosed = course.run_session(self.clinic, c, self.day(day, hour))
        self.sessions.append(dosed)
        return dosed

    def note(self, kind: str, text: str, day: int, *, session: Dosed | None = None,
             appends: str | None = None, sign: bool = True) -> str:
        at = self.day(day, 14) if session is None else session.start_us + 150 * 60_000_000
        return course.note(self.clinic, self.patient, kind, text, at,
                           encounter=session.encounter if session else None,
                           appends=appends, sign=sign)


# -- the stories --------------------------------------------------------------------------


def referred(s: Story) -> None:
    """Referred: registered, nothing else yet."""


def needs_review(s: Story) -> None:
    s.screen(-6, yes=frozenset({"med-benzodiazepine"}))
    s.decide(-4, "needs-review")


def not_eligible(s: Story) -> None:
    s.screen(-9, yes=frozenset({"bipolar-psychotic-history"}))
    s.decide(-8, "not-eligible")


def item9(s: Story) -> None:
    """A PHQ-9 with thoughts of self-harm on several days: the service raises the item-9
    flag, which nobody has reviewed yet."""
    s.scores(-2, 0, fixed={"phq-9": {"9": 1}})


def eligible(s: Story) -> None:
    booked = s.person.gender == "female"
    s.screen(-10 if booked else -5)
    s.decide(-7 if booked else -2, "eligible")
    if booked:
        c = s.course(-7)
        s.note("preparation", "Preparation session: expectations, set and setting, "
               "intentions for the first session discussed.", -3)
        s.clinic.at(s.day(-3, 15))
        body = session_encounter(c.patient, c.episode, phase="planned",
                                        start=s.clinic.at(s.day(2, 9)))
        s.clinic.create("nurse", body)


def mid_course(s: Story) -> None:
    ptsd = s.person.diagnosis == patients.PTSD
    if ptsd:
        s.screen(-18)
        s.decide(-16, "eligible")
        c = s.course(-16)
        first = s.session(c, -9)
        s.note("integration", "Integration: vivid imagery, felt safe; noticed less "
               "hypervigilance the following day.", -9, session=first)
        second = s.session(c, -5, 13)
        course.adverse_event(s.clinic, second, s.patient, second.dose_us + 30 * 60_000_000,
                             "422587007", "Nausea")
        return
    s.screen(-24)
    s.decide(-21, "eligible")
    c = s.course(-21)
    s.note("preparation", "Preparation: reviewed history, goals for the course and "
           "grounding techniques.", -20)
    first = s.session(c, -14)
    s.note("integration", "Integration after session 1: emotional release, insight into "
           "self-criticism; plans journaling.", -14, session=first)
    second = s.session(c, -10)
    s.scores(-10, 1, encounter=second.encounter)
    third = s.session(c, -7)
    s.note("integration", "Integration after session 3 (draft): mood brighter, sleeping "
           "better.", -7, session=third, sign=False)


def completed(s: Story) -> None:
    days: tuple[int, ...]
    if s.person.diagnosis == patients.PTSD:
        days, screened, decided = (-45, -42, -38, -35, -31), -55, -52
    else:
        days, screened, decided = (-40, -36, -33, -29), -46, -44
    s.screen(screened)
    s.decide(decided, "eligible")
    c = s.course(decided)
    prep = s.note("preparation", "Preparation: psychoeducation on dissociation, consent "
                  "reviewed, support person identified.", decided + 2)
    for n, day in enumerate(days):
        if n in (1, len(days) - 2):
            s.scores(day, 1 if n == 1 else 2)
        dosed = s.session(c, day)
        if n == 0 and s.person.diagnosis == patients.PTSD:
            ledger.waste(s.clinic, s.ops, dosed, s.patient, Decimal(50),
                         dosed.dose_us + 45 * 60_000_000)
    s.scores(days[-1] + 7, 3)
    course.complete_order(s.clinic, c, s.day(days[-1] + 7, 11))
    patients.set_episode(s.clinic, s.episode, "finished", s.day(days[-1] + 7, 11, 5))
    last = s.sessions[-1]
    integration = s.note("integration", "Integration after the final session: depressive "
                         "symptoms much reduced; relapse-prevention plan agreed.",
                         days[-1], session=last)
    if s.person.diagnosis == patients.PTSD:
        s.note("psychotherapy", "Process notes: trauma narrative, therapist's impressions "
               "of avoidance themes (kept apart from the record).", days[2],
               session=s.sessions[2])
        s.note("integration", "Addendum: patient phoned next day, reports restful sleep.",
               days[-1] + 1, appends=integration)
    else:
        s.note("integration", "Addendum to the preparation note: partner will escort after "
               "each session.", decided + 3, appends=prep)
        course.sign_note(s.clinic, integration, "physician", "reviewed")


def esketamine(s: Story) -> None:
    s.screen(-20)
    s.decide(-17, "eligible")
    c = s.course(-17, esketamine=True)
    first = s.session(c, -8)
    course.rems_form(s.clinic, first, first.start_us + 3 * 60 * 60_000_000)
    second = s.session(c, -4)
    s.scores(-4, 1, encounter=second.encounter)


STORIES: dict[str, Callable[[Story], None]] = {
    patients.REFERRED: referred, patients.NEEDS_REVIEW: needs_review,
    patients.NOT_ELIGIBLE: not_eligible, patients.ITEM9: item9, patients.ELIGIBLE: eligible,
    patients.MID_COURSE: mid_course, patients.COMPLETED: completed,
    patients.ESKETAMINE: esketamine,
}
# How many days before today each stage's patient was referred.
REFERRED_DAYS_AGO = {
    patients.REFERRED: 2, patients.NEEDS_REVIEW: 12, patients.NOT_ELIGIBLE: 14,
    patients.ITEM9: 4, patients.ELIGIBLE: 15, patients.MID_COURSE: 30,
    patients.COMPLETED: 62, patients.ESKETAMINE: 26,
}
