"""What a card policy would have decided on the incidents sanctions already holds.

A trust changes its scheme only after analysing the data its pilot produced. Replaying each
subject's incidents under the policy it runs and under a candidate, side by side, shows
what the change would do (how many warnings, proposals and bans, for whom) before anyone
is carded under it. Pure: nothing is stored or published, and no one is affected.

Each subject's incidents are replayed in the order they happened, each as if reported when
it happened, with time moving on between them (warnings lapse, bans expire). Withdrawn
incidents and incidents excused on appeal are left out. People's decisions cannot be
replayed, so a replay either leaves every red card proposed (what the policy proposes) or
has every one approved at once (the most it could exclude).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

from schemas.sanctions import Decision, RedCardProposed, YellowCardIssued
from services.sanctions.domain import ladder
from services.sanctions.domain.decide import Agree, Approve, IncidentSeen, Tick, decide
from services.sanctions.domain.model import CardStatus, IncidentRecord, Policy, SubjectState

SECURITY, CLINICAL = "simulated-security-manager", "simulated-clinical-lead"
# Counted per subject too: how many people a policy would warn, propose to ban, or ban.
PEOPLE = {"yellow_card_1": "people_warned", "red_card_proposed": "people_proposed_a_ban", "ban_imposed": "people_banned"}


@dataclass
class Tally:
    """Decisions a policy made in a replay, by kind, and the people they fell on."""

    decisions: Counter[str] = field(default_factory=Counter)
    by_kind_of_perpetrator: Counter[tuple[str, str]] = field(default_factory=Counter)
    # Whether sanctions fall disproportionately on vulnerable people (homelessness, care
    # leavers, criminal justice history), as the equality impact assessment asks.
    by_vulnerability: Counter[tuple[str, str]] = field(default_factory=Counter)

    def add(self, state: SubjectState, decisions: Iterable[Decision]) -> None:
        decisions = list(decisions)
        kinds = [kind(d) for d in decisions]
        self.decisions.update(kinds)
        self.decisions.update(PEOPLE[k] for k in set(kinds) if k in PEOPLE)
        self.decisions["people"] += 1
        incidents = {i.incident_id: i for i in state.incidents}
        for d, name in zip(decisions, kinds, strict=True):
            # Extensions count with the proposals here: the question is who a policy would exclude.
            name = name.partition(":")[0]
            incident = incidents.get(d.incident_id)
            self.by_kind_of_perpetrator[(incident.kind.value if incident else "unknown", name)] += 1
            for group in _vulnerability_groups(incident):
                self.by_vulnerability[(group, name)] += 1


def _vulnerability_groups(incident: IncidentRecord | None) -> list[str]:
    """The groups a decision counts in: each vulnerability recorded, or none."""
    return [v.value for v in incident.vulnerabilities] if incident and incident.vulnerabilities else ["none"]


def kind(d: Decision) -> str:
    """yellow_card_1, yellow_card_2, red_card_proposed, ban_imposed, warning_lapsed..."""
    name = d.event_type.split(".")[-2]
    if isinstance(d, YellowCardIssued):
        return f"yellow_card_{d.level}"
    return f"{name}:{d.rule}" if isinstance(d, RedCardProposed) and d.rule == ladder.EXTENSION else name


def replay(state: SubjectState, policy: Policy, approve: bool = False,
           until: datetime | None = None) -> list[Decision]:
    """Every decision `policy` would have made on the subject's live incidents, up to `until`
    (warnings lapsing and bans ending after the last incident), or up to the last incident."""
    live = sorted((i for i in state.incidents if not i.withdrawn and not i.excused),
                  key=lambda i: (i.occurred_at, i.seq))
    fresh, made = SubjectState(subject_id=state.subject_id), []
    for incident in live:
        now = incident.occurred_at
        fresh, ticked = decide(fresh, Tick(), policy, now)
        # As if reported when it happened, as the comparison promises: only the policy differs.
        timely = incident.model_copy(update={"reported_at": now})
        fresh, seen = decide(fresh, IncidentSeen(timely), policy, now)
        made += ticked + seen
        for card in [c for c in fresh.cards if c.status == CardStatus.PROPOSED] if approve else ():
            fresh, approved = _approve(fresh, card.sanction_id, policy, now)
            made += approved
    if until is not None and live and until > live[-1].occurred_at:
        made += decide(fresh, Tick(), policy, until)[1]
    return made


def _approve(state: SubjectState, sanction_id: UUID, policy: Policy, now: datetime) -> tuple[SubjectState, list[Decision]]:
    state, made = decide(state, Approve(sanction_id, SECURITY), policy, now)
    if policy.clinical_agreement_required:
        state, agreed = decide(state, Agree(sanction_id, CLINICAL), policy, now)
        made += agreed
    return state, made


@dataclass
class Comparison:
    """The running policy's tally and a candidate's, over the same subjects."""

    current: Policy
    candidate: Policy
    approve: bool = False
    until: datetime | None = None
    # One trust in a region: its people and the decisions on its incidents. The ladder still
    # counts a person's incidents everywhere, as the running service does.
    organisation: str | None = None
    before: Tally = field(default_factory=Tally)
    after: Tally = field(default_factory=Tally)

    def add(self, state: SubjectState) -> None:
        if self.organisation and all(i.organisation != self.organisation for i in state.incidents):
            return
        self.before.add(state, self._ours(replay(state, self.current, self.approve, self.until)))
        self.after.add(state, self._ours(replay(state, self.candidate, self.approve, self.until)))

    def _ours(self, decisions: list[Decision]) -> list[Decision]:
        return [d for d in decisions if self.organisation in (None, d.organisation)]
