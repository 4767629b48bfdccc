"""Kafka topic names: the public contract between services and subscribers."""

INCIDENTS = "vanda.incidents.v1"
SANCTIONS = "vanda.sanctions.v1"
POLICE_REFERRALS = "vanda.police-referrals.v1"
BOARD_METRICS = "vanda.board-metrics.v1"


def dead_letter(topic: str) -> str:
    """Name the dead-letter topic for a source topic."""
    return f"{topic}.dlq"
