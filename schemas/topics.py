"""Kafka topic names: the public contract between services and subscribers."""

# Upstream systems that prefer Kafka to HTTP publish IncidentReport JSON here (one per record).
SUBMISSIONS = "vanda.intake.submissions.v1"
INCIDENTS = "vanda.incidents.v1"
SANCTIONS = "vanda.sanctions.v1"
POLICE_REFERRALS = "vanda.police-referrals.v1"
BOARD_METRICS = "vanda.board-metrics.v1"
# What body-worn camera footage must be kept as evidence, and what may be deleted.
FOOTAGE = "vanda.footage.v1"


def dead_letter(topic: str) -> str:
    """Name the dead-letter topic for a source topic."""
    return f"{topic}.dlq"
