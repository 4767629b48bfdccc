"""The bench's pure pieces: percentiles, rates and ratios, targets, the table, the workload split."""

from __future__ import annotations

import os
from datetime import UTC, datetime

import orjson
import pytest

from schemas.events import decode
from vanda.bench import counts, cpu, stats, workload
from vanda.bench.latency import latencies_ms
from vanda.bench.memory import Sampler, growth
from vanda.bench.pipeline import next_poll


@pytest.mark.parametrize(("values", "q", "expected"), [
    ([], 50, None),
    ([7.0], 0, 7.0),
    ([7.0], 99, 7.0),
    ([1.0, 2.0, 3.0, 4.0, 5.0], 50, 3.0),
    ([5.0, 1.0, 4.0, 2.0, 3.0], 50, 3.0),  # order does not matter
    ([1.0, 2.0, 3.0, 4.0], 50, 2.5),  # interpolated between the middle two
    ([1.0, 2.0, 3.0, 4.0, 5.0], 0, 1.0),
    ([1.0, 2.0, 3.0, 4.0, 5.0], 100, 5.0),
    ([float(n) for n in range(1, 101)], 99, 99.01),
    ([10.0, 20.0], 25, 12.5),
])
def test_percentile(values: list[float], q: float, expected: float | None) -> None:
    got = stats.percentile(values, q)
    assert got == pytest.approx(expected) if expected is not None else got is None


@pytest.mark.parametrize("q", [-1, 100.5])
def test_percentile_refuses_out_of_range(q: float) -> None:
    with pytest.raises(ValueError):
        stats.percentile([1.0], q)


@pytest.mark.parametrize(("count", "seconds", "expected"), [
    (1000, 2.0, 500.0), (0, 2.0, None), (10, 0.0, None), (3, 0.5, 6.0),
])
def test_rate(count: int, seconds: float, expected: float | None) -> None:
    assert stats.rate(count, seconds) == expected


@pytest.mark.parametrize(("a", "b", "expected"), [
    (10_000.0, 500.0, 20.0), (None, 500.0, None), (100.0, None, None), (100.0, 0.0, None), (0.0, 5.0, 0.0),
])
def test_ratio(a: float | None, b: float | None, expected: float | None) -> None:
    assert stats.ratio(a, b) == expected


@pytest.mark.parametrize(("figures", "expected"), [
    ({}, {"limit_per_s": None, "ratio_pipeline_limit": None, "ratio_pipeline_naive": None,
          "rebuild_1m_events_s": None}),
    ({"limit_produce_per_s": 50_000.0, "limit_consume_per_s": 200_000.0, "limit_copy_per_s": 40_000.0,
      "pipeline_per_s": 10_000.0, "naive_per_s": 500.0, "rebuild_events_per_s": 10_000.0},
     {"limit_per_s": 40_000.0, "ratio_pipeline_limit": 0.25, "ratio_pipeline_naive": 20.0,
      "rebuild_1m_events_s": 100.0}),
    # A limit that was not measured is left out of the minimum, not read as zero.
    ({"limit_produce_per_s": 30_000.0, "limit_copy_per_s": None, "pipeline_per_s": 3000.0},
     {"limit_per_s": 30_000.0, "ratio_pipeline_limit": 0.1, "ratio_pipeline_naive": None,
      "rebuild_1m_events_s": None}),
])
def test_derived_figures(figures: dict, expected: dict) -> None:
    got = stats.derived(figures)
    assert got == pytest.approx(expected) if all(v is not None for v in expected.values()) else got == expected


@pytest.mark.parametrize(("figure", "value", "met"), [
    ("ratio_pipeline_naive", 20.0, True), ("ratio_pipeline_naive", 19.9, False),
    ("pipeline_per_s", 10_000.0, True), ("pipeline_per_s", 9_999.0, False),
    ("latency_p99_ms", 249.0, True), ("latency_p99_ms", 251.0, False),
    ("rebuild_1m_events_s", 119.0, True), ("rebuild_1m_events_s", 121.0, False),
    ("memory_growth_mb", 12.0, True), ("memory_growth_mb", 400.0, False),
    ("pipeline_per_s", None, None),
])
def test_targets(figure: str, value: float | None, met: bool | None) -> None:
    target = next(t for t in stats.TARGETS if t.figure == figure)
    assert target.met({figure: value}) is met


def test_table_has_one_row_per_figure_in_order_with_targets_and_notes() -> None:
    figures = {"pipeline_per_s": 12_345.6, "naive_per_s": 480.2, "latency_p99_ms": 180.0,
               "ratio_pipeline_naive": 25.7}
    rows = stats.table_rows(figures, {"naive_per_s": "5,000 incidents"})
    assert [r[0].split(" [")[0] for r in rows] == [label for _, label, _ in stats.ROWS]
    by_label = {r[0]: r for r in rows}
    assert by_label["naive peer (1 message, 1 transaction) [5,000 incidents]"][1] == "480"
    pipeline = next(r for r in rows if r[0].startswith("pipeline: submitted"))
    assert pipeline[1:] == ("12,346", "incidents/s", ">= 10,000/s (met)")
    ratio = next(r for r in rows if r[0] == "pipeline / naive")
    assert ratio[1:] == ("25.7", "x", ">= 20x naive (met)")
    unmeasured = next(r for r in rows if r[0] == "reporting rebuild: replay")
    assert unmeasured[1] == "-"


@pytest.mark.parametrize(("value", "unit", "text"), [
    (None, "", "-"), (12345.678, "incidents/s", "12,346"), (12.34, "ms", "12.3"), (3.14159, "x", "3.14"), (0.004687, "x", "0.00469"),
    (2000, "", "2,000"), ("batch", "", "batch"),
])
def test_fmt(value: object, unit: str, text: str) -> None:
    assert stats.fmt(value, unit) == text


@pytest.mark.parametrize(("total", "share", "kafka", "http"), [
    (200_000, 0.5, 100_000, 100_000), (2001, 0.5, 1000, 1001), (1, 0.5, 0, 1), (0, 0.5, 0, 0),
    (10, 1.0, 10, 0), (10, 0.0, 0, 10), (10, 0.3, 3, 7),
])
def test_split(total: int, share: float, kafka: int, http: int) -> None:
    got = workload.split(total, share)
    assert (got.kafka, got.http, got.total) == (kafka, http, total)


@pytest.mark.parametrize(("total", "share"), [(-1, 0.5), (10, 1.5), (10, -0.1)])
def test_split_refuses_nonsense(total: int, share: float) -> None:
    with pytest.raises(ValueError):
        workload.split(total, share)


@pytest.mark.parametrize(("items", "size", "expected"), [
    ([], 5000, []), ([1, 2, 3], 5000, [[1, 2, 3]]), ([1, 2, 3, 4, 5], 2, [[1, 2], [3, 4], [5]]),
    (list(range(10_001)), 5000, [list(range(5000)), list(range(5000, 10_000)), [10_000]]),
])
def test_chunks(items: list[int], size: int, expected: list[list[int]]) -> None:
    assert list(workload.chunks(items, size)) == expected


def test_two_entry_points_never_share_a_source_ref_key() -> None:
    reports = workload.reports(200, seed=3, source_system="bench")
    share = workload.split(len(reports))
    keys = [workload.submission_key(r) for r in workload.with_source(reports[:share.kafka], workload.KAFKA_SOURCE)]
    keys += [workload.submission_key(r) for r in workload.with_source(reports[share.kafka:], workload.HTTP_SOURCE)]
    assert len(set(keys)) == len(keys) == 200
    assert all(k.startswith((b"bench-kafka:", b"bench-http:")) for k in keys)


def test_workload_is_seeded_and_realistic() -> None:
    first = workload.reports(3000, seed=11, source_system="bench", end=datetime(2025, 6, 1, tzinfo=UTC))
    again = workload.reports(3000, seed=11, source_system="bench", end=datetime(2025, 6, 1, tzinfo=UTC))
    assert first == again
    assert {r["category"] for r in first} >= {"verbal_abuse", "physical_assault", "weapon", "sexual_misconduct",
                                              "hate_incident", "threatening_behaviour", "damage_to_property"}
    people = [r["perpetrator"]["nhs_number"] for r in first if r["perpetrator"]["nhs_number"]]
    assert len(set(people)) < len(people)  # repeat perpetrators


def test_ndjson_is_one_report_per_line() -> None:
    reports = workload.reports(3, seed=1, source_system="bench")
    body = workload.ndjson(reports)
    assert [orjson.loads(line) for line in body.splitlines()] == reports
    assert body.endswith(b"\n")


def test_reported_event_is_pseudonymised_and_decodes() -> None:
    report = next(r for r in workload.reports(50, seed=5, source_system="bench") if r["perpetrator"]["nhs_number"])
    key, value = workload.reported_event(report)
    event = decode(value)
    assert event.type == "uk.nhs.vanda.incident.reported.v1"
    assert event.data.subject_id == key.decode() == workload.pseudonym(f"nhs:{report['perpetrator']['nhs_number']}")
    assert report["perpetrator"]["nhs_number"].encode() not in value
    assert b"narrative" not in value


def test_latencies_only_for_incidents_with_both_times() -> None:
    at = datetime(2025, 1, 1, tzinfo=UTC)
    accepted = {"a": at, "b": at, "c": at}
    first_ms = {"a": int(at.timestamp() * 1000) + 40, "c": int(at.timestamp() * 1000) + 250, "z": 1}
    assert sorted(latencies_ms(first_ms, accepted)) == [40, 250]


@pytest.mark.parametrize(("before", "after", "sent", "stored", "rejected", "failed"), [
    ((0, 0, 0), (100, 100, 100), {"k": 60, "h": 40}, {"k": 60, "h": 40}, 0, []),
    ((5, 5, 5), (105, 105, 105), {"k": 100}, {"k": 100}, 0, []),
    ((0, 0, 0), (100, 99, 100), {"k": 100}, {"k": 100}, 0, ["sanctions: incidents applied once = intake's"]),
    ((0, 0, 0), (100, 100, 101), {"k": 100}, {"k": 100}, 0, ["reporting: incidents projected once = intake's"]),
    ((0, 0, 0), (99, 99, 99), {"k": 100}, {"k": 99}, 1,
     ["intake stored every k incident", "intake refused none of the bench's valid reports",
      "intake: new incidents = incidents submitted"]),
])
def test_exactness_checks(before: tuple, after: tuple, sent: dict, stored: dict, rejected: int,
                          failed: list[str]) -> None:
    result = counts.checks(counts.Applied(*before), counts.Applied(*after), sent, stored, rejected)
    assert [c.name for c in result if not c.passed] == failed
    assert counts.summary(result)["passed"] is (not failed)


A = counts.Applied


@pytest.mark.parametrize(("first", "now", "elapsed", "target", "wait"), [
    # sanctions needs 50 s more at 1,000/s, reporting 10 s: a quarter of 10 s, capped at 1 s
    (A(0, 0, 0), A(100_000, 50_000, 90_000), 50.0, A(100_000, 100_000, 100_000), 1.0),
    # reporting 2 s from its finish: poll again in half a second
    (A(0, 0, 0), A(100_000, 50_000, 98_000), 98.0, A(100_000, 100_000, 100_000), 0.5),
    # nearly there: never faster than 0.2 s
    (A(0, 0, 0), A(100_000, 99_990, 100_000), 50.0, A(100_000, 100_000, 100_000), 0.2),
    # the rate counts from the first poll, not from zero
    (A(0, 50_000, 0), A(0, 60_000, 0), 10.0, A(0, 61_000, 0), 0.25),
    # finished stages do not count; nothing moving yet waits the longest
    (A(5, 5, 5), A(10, 5, 5), 3.0, A(10, 10, 10), 1.0),
])
def test_polls_are_sparse_mid_run_and_frequent_near_a_stage_finish(first: counts.Applied, now: counts.Applied,
                                                                   elapsed: float, target: counts.Applied,
                                                                   wait: float) -> None:
    assert next_poll(first, now, elapsed, target) == pytest.approx(wait)


@pytest.mark.parametrize(("report", "expected"), [
    ({}, None),
    ({"a": {"growth_mb": 3.0}, "b": {"growth_mb": 12.5}}, 12.5),
    ({"a": {"growth_mb": None}, "b": {"growth_mb": -4.0}}, -4.0),
])
def test_memory_growth_is_the_largest(report: dict, expected: float | None) -> None:
    assert growth(report) == expected


class FedSampler(Sampler):
    """A sampler whose readings come from a list instead of running processes."""

    def __init__(self, readings: list[float]) -> None:
        self.readings = iter(readings)
        super().__init__({"svc": 0})

    def _sample(self) -> dict[str, float | None]:
        return {"svc": next(self.readings)}


@pytest.mark.parametrize(("first_half", "second_half", "expected"), [
    ([100, 180, 120], [110, 175, 130], -5.0),  # a spike in each half: flat
    ([100, 120, 140], [160, 180, 200], 60.0),  # climbing with the work done: growth
    ([100, 250, 120], [130, 140, 150], -100.0),  # a first-half spike does not count as growth later
])
def test_memory_growth_compares_the_peaks_of_the_pipeline_halves(first_half: list[float],
                                                                  second_half: list[float], expected: float) -> None:
    # start, pipeline_start mark, first-half samples, half mark, second-half samples, end mark, exit
    sampler = FedSampler([80, 90, *first_half[:-1], first_half[-1], *second_half[:-1], second_half[-1], 95])
    sampler.mark("pipeline_start")
    for _ in first_half[:-1]:
        sampler._record(sampler._sample())
    sampler.mark("pipeline_half")
    for _ in second_half[:-1]:
        sampler._record(sampler._sample())
    sampler.mark("pipeline_end")
    sampler.end_mb = sampler._sample()
    report = sampler.report()["svc"]
    assert report["growth_mb"] == expected
    assert report["growth_basis"].startswith("pipeline second-half peak")


def test_memory_growth_without_marks_is_start_to_end() -> None:
    sampler = FedSampler([80, 95])
    sampler.end_mb = sampler._sample()
    assert sampler.report()["svc"]["growth_mb"] == 15.0


@pytest.mark.parametrize(("people", "expected"), [
    ([], {"carded_incidents": 0, "subjects": 0, "busiest_subjects_share": []}),
    ([("patient", "1"), ("patient", "1"), ("visitor", "2"), ("staff", "3"), ("patient", None)],
     {"carded_incidents": 3, "subjects": 2, "busiest_subjects_share": [0.667, 0.333]}),
])
def test_concentration(people: list[tuple[str, str | None]], expected: dict) -> None:
    reports = [{"perpetrator": {"kind": kind, "nhs_number": nhs}} for kind, nhs in people]
    assert workload.concentration(reports) == expected


@pytest.mark.parametrize(("used", "incidents", "expected"), [
    ({"intake": 2.0, "postgres": 1.0}, 1000, {"intake": 2.0, "postgres": 1.0, "total": 3.0}),
    ({"intake": 0.5}, 250, {"intake": 2.0, "total": 2.0}),
    ({"intake": 1.0}, 0, {}),
])
def test_cpu_per_incident(used: dict, incidents: int, expected: dict) -> None:
    assert cpu.per_incident(used, incidents) == pytest.approx(expected)


def test_cpu_meter_sees_this_process_work_and_forgets_a_missing_one() -> None:
    meter = cpu.Meter({"me": os.getpid(), "gone": 2 ** 22 + 12345})
    meter.start()
    sum(i * i for i in range(2_000_000))
    used = meter.stop()
    assert set(used) == {"me"} and used["me"] > 0


def test_samples_between_phases_are_not_counted_as_setup() -> None:
    sampler = FedSampler([80, 81, 300, 310, 250, 82])  # start, setup, in limit (enter, exit), between, end
    sampler._record(sampler._sample())
    with sampler.phase("limit"):
        pass
    sampler._record(sampler._sample())
    sampler.end_mb = sampler._sample()
    peaks = sampler.report()["svc"]["peak_mb"]
    assert peaks["setup"] == 81 and peaks["limit"] == 310 and peaks["between phases"] == 250
