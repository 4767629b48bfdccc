"""The rebuild's lanes: every partition replayed once, one subject's two topics in one lane; the
settings a rebuild must share with reporting; the connections it takes together."""

from __future__ import annotations

from aiokafka import TopicPartition
from hypothesis import given
from hypothesis import strategies as st

from schemas.topics import INCIDENTS, SANCTIONS
import pytest

from services.reporting.rebuild import lanes_of, settings_differ
from vanda import envfile
from vanda.runtime.outbox import keyed_partitioner


@given(st.integers(1, 24), st.integers(1, 8))
def test_every_partition_is_in_exactly_one_lane_and_no_lane_is_empty(partitions: int, lanes: int) -> None:
    parts = [TopicPartition(t, p) for t in (INCIDENTS, SANCTIONS) for p in range(partitions)]
    split = lanes_of(parts, lanes)
    assert sorted(tp for lane in split for tp in lane) == sorted(parts)
    assert all(split) and len(split) == min(lanes, partitions)


@given(st.text(min_size=1, max_size=60), st.integers(1, 4))
def test_a_subjects_incidents_and_decisions_share_a_lane(subject: str, lanes: int) -> None:
    # Both topics are keyed by subject with the same partition count, so one lane holds both.
    parts = [TopicPartition(t, p) for t in (INCIDENTS, SANCTIONS) for p in range(6)]
    partition = keyed_partitioner(subject.encode(), list(range(6)), list(range(6)))
    homes = [i for i, lane in enumerate(lanes_of(parts, lanes))
             if TopicPartition(INCIDENTS, partition) in lane or TopicPartition(SANCTIONS, partition) in lane]
    assert len(homes) == 1


@pytest.mark.parametrize(("recorded", "ours", "named"), [
    ({}, {"REPORTING_TIMEZONE": "Europe/London"}, []),  # nothing recorded: nothing to differ from
    ({"REPORTING_TIMEZONE": "Europe/London"}, {"REPORTING_TIMEZONE": "Europe/London"}, []),
    ({"REPORTING_TIMEZONE": "Europe/London"}, {"REPORTING_TIMEZONE": "UTC"}, ["REPORTING_TIMEZONE"]),
    ({"REPORTING_POLICE_CRITERIA": '["weapon"]', "REPORTING_CONSUMER_GROUP": "g"},
     {"REPORTING_POLICE_CRITERIA": '["hate_aggravation", "weapon"]', "REPORTING_CONSUMER_GROUP": "h"},
     ["REPORTING_POLICE_CRITERIA", "REPORTING_CONSUMER_GROUP"]),
])
def test_each_setting_a_rebuild_has_otherwise_than_reporting_is_named(recorded, ours, named) -> None:
    lines = settings_differ(recorded, ours)
    assert [line.split(":")[0] for line in lines] == named
    assert all(f"reporting runs with {recorded[n]}, this run has {ours[n]}" in line for n, line in zip(named, lines))


NAMES = ("DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS")


def test_connections_come_all_from_the_environment_or_all_from_the_file(tmp_path, monkeypatch) -> None:
    (tmp_path / "endpoints.env").write_text("DATABASE_URL=postgresql://stack/db\nKAFKA_BOOTSTRAP_SERVERS=stack:9092\n")
    for name in NAMES:
        monkeypatch.delenv(name, raising=False)
    assert envfile.settings(tmp_path, NAMES) == {"DATABASE_URL": "postgresql://stack/db",
                                                 "KAFKA_BOOTSTRAP_SERVERS": "stack:9092"}
    # One given in the environment: the file's other is never paired with it.
    monkeypatch.setenv("DATABASE_URL", "postgresql://production/db")
    assert envfile.settings(tmp_path, NAMES) == {"DATABASE_URL": "postgresql://production/db",
                                                 "KAFKA_BOOTSTRAP_SERVERS": None}
