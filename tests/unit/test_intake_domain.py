"""Validation, pseudonymisation and the shape of what leaves intake."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from pydantic import ValidationError

from schemas.events import decode, encode, envelope
from schemas.incidents import IncidentReport, nhs_number_is_valid
from services.intake.domain import accept, fingerprint, fingerprints, normalised_identifier
from services.intake.vault import Keyring, identified
from tests.factories import T0, TEST_NHS_NUMBER, incident, report

KEYRING = Keyring(1, {1: b"k" * 32}, b"identity")
SUBJECT = "sub_" + "c" * 40


@pytest.mark.parametrize(("number", "valid"), [
    ("9434765919", True), ("9434765918", False), ("943476591", False), ("94347659190", False),
    ("abcdefghij", False), ("0000000000", True), ("1000000010", False),
    ("９４３４７６５９１９", False), ("943476591²", False),  # digits of other scripts, with a valid check digit
])
def test_nhs_number_check_digit(number, valid):
    assert nhs_number_is_valid(number) is valid


def test_nhs_number_with_spaces_is_normalised():
    r = IncidentReport(**report(perpetrator={"kind": "patient", "nhs_number": "943 476 5919"}))
    assert r.perpetrator.nhs_number == "9434765919"


@pytest.mark.parametrize(("given", "stored"), [("RZA", "RZA"), ("rza", "RZA"), (" Rj1 ", "RJ1")])
def test_an_ods_code_is_taken_in_either_case_and_stored_upper_case(given, stored):
    assert IncidentReport(**report(organisation=given)).organisation == stored


@pytest.mark.parametrize("bad", ["RJ-1", "R1", "RJ12345", "ＲＪ１"])
def test_an_ods_code_not_of_3_to_6_letters_and_digits_is_refused_naming_the_field(bad):
    with pytest.raises(ValidationError) as caught:
        IncidentReport(**report(organisation=bad))
    assert [e["loc"] for e in caught.value.errors()] == [("organisation",)]


@pytest.mark.parametrize(("number", "reason"), [
    ("0000000000", "a placeholder"), ("9999999999", "a placeholder"),  # pass the check digit: "not known"
    ("９４３４７６５９１９", "not a valid NHS number"), ("943476591²", "not a valid NHS number"),
])
def test_placeholders_and_other_scripts_digits_are_refused_naming_the_field(number, reason):
    with pytest.raises(ValidationError) as err:
        IncidentReport(**report(perpetrator={"kind": "patient", "nhs_number": number}))
    [error] = err.value.errors()
    assert error["loc"] == ("perpetrator", "nhs_number") and reason in error["msg"] and number not in error["msg"]


@pytest.mark.parametrize("field", ["nhs_number", "local_id"])
def test_an_identifier_for_a_perpetrator_of_kind_unknown_is_refused_naming_it(field):
    # Sealed and kept for letters nobody sends: either the kind or the identifier is wrong.
    identifier = {"nhs_number": "9434765919", "local_id": "MRN123456"}[field]
    with pytest.raises(ValidationError) as err:
        IncidentReport(**report(perpetrator={"kind": "unknown", field: identifier}))
    [error] = err.value.errors()
    assert error["loc"] == ("perpetrator", field) and "kind unknown" in error["msg"]
    assert IncidentReport(**report(perpetrator={"kind": "visitor", field: identifier})).perpetrator.kind == "visitor"


@pytest.mark.parametrize("blank", ["", "   "])
def test_a_blank_crime_reference_is_no_crime_reference(blank):
    r = IncidentReport(**report(police={"informed": False, "crime_reference": blank}))
    assert r.police.crime_reference is None


def test_flags_given_in_any_order_or_twice_are_one_set_and_one_fingerprint():
    body = report()

    def reported(flags: list[str]) -> IncidentReport:
        return IncidentReport(**body | {"perpetrator": {"kind": "patient", "vulnerabilities": flags}})
    once, again = reported(["homelessness", "care_leaver"]), reported(["care_leaver", "homelessness", "care_leaver"])
    assert once.perpetrator.vulnerabilities == ["care_leaver", "homelessness"] == again.perpetrator.vulnerabilities
    assert fingerprint(once) == fingerprint(again)


def test_every_bad_field_is_named():
    bad = report(category="shouting", perpetrator={"kind": "patient", "nhs_number": "9434765918"},
                 occurred_at="2026-03-01T09:30:00")
    with pytest.raises(ValidationError) as err:
        IncidentReport(**bad)
    fields = {".".join(str(p) for p in e["loc"]) for e in err.value.errors()}
    assert {"category", "perpetrator.nhs_number", "occurred_at"} <= fields


def test_unknown_fields_are_rejected():
    with pytest.raises(ValidationError, match="extra"):
        IncidentReport(**report(patient_name="Jane"))


def test_pseudonym_is_stable_keyed_and_hides_the_number():
    ident = f"nhs:{TEST_NHS_NUMBER}"
    digest = KEYRING.digests(ident)[0]
    assert digest == KEYRING.digests(ident)[0]
    assert digest != Keyring(1, {1: b"other"}, b"identity").digests(ident)[0]
    assert TEST_NHS_NUMBER not in digest[1]


def test_rotation_looks_up_the_current_key_first_then_newest_previous():
    ring = Keyring(3, {1: b"one", 2: b"two", 3: b"three"}, b"identity")
    assert [v for v, _ in ring.digests("nhs:1")] == [3, 2, 1]


def test_nhs_number_wins_over_local_id_and_local_ids_are_per_organisation():
    r = IncidentReport(**report(perpetrator={"kind": "patient", "nhs_number": TEST_NHS_NUMBER, "local_id": "x1"}))
    assert normalised_identifier(r.perpetrator, "RZA") == f"nhs:{TEST_NHS_NUMBER}"
    local = IncidentReport(**report(perpetrator={"kind": "patient", "local_id": " x1 "})).perpetrator
    assert normalised_identifier(local, "RZA") != normalised_identifier(local, "RZB")


def test_accepted_event_carries_no_identifier_or_narrative():
    accepted = accept(IncidentReport(**report()), incident_id=uuid.uuid4(), subject_id=SUBJECT, now=T0)
    text = accepted.event.model_dump_json()
    assert TEST_NHS_NUMBER not in text and "shouted" not in text
    assert accepted.event.subject_id and accepted.event.perpetrator.identified
    assert accepted.narrative == "He shouted at the nurse."


def test_unidentified_perpetrator_has_no_subject():
    r = IncidentReport(**report(perpetrator={"kind": "unknown"}))
    accepted = accept(r, incident_id=uuid.uuid4(), subject_id=None, now=T0)
    assert accepted.event.subject_id is None and not accepted.event.perpetrator.identified


def test_a_stored_fingerprint_is_keyed_and_still_tells_a_retry_after_a_rotation():
    body = report()
    digest, other = fingerprint(IncidentReport(**body)), fingerprint(IncidentReport(**(body | {"harm": "low"})))
    sealed = KEYRING.seal_fingerprint(digest)
    # Without the key, trying NHS numbers against the stored value gets nowhere: it is not the digest.
    assert sealed.startswith("k1:") and digest not in sealed
    assert sealed != Keyring(1, {1: b"x" * 32}, b"identity").seal_fingerprint(digest)
    assert KEYRING.fingerprint_matches(sealed, digest) and not KEYRING.fingerprint_matches(sealed, other)
    rotated = Keyring(2, {1: b"k" * 32, 2: b"n" * 32}, b"identity")
    assert rotated.fingerprint_matches(sealed, digest) and rotated.seal_fingerprint(digest).startswith("k2:")
    assert not Keyring(2, {2: b"n" * 32}, b"identity").fingerprint_matches(sealed, digest)  # key dropped
    # Stored before they were keyed: matched bare until resealed.
    assert KEYRING.fingerprint_matches(digest, digest) and not KEYRING.fingerprint_matches(digest, other)
    assert not KEYRING.fingerprint_matches("k9:" + sealed[3:], digest)


def test_fingerprint_tells_a_retry_from_a_different_report():
    body = report()
    assert fingerprint(IncidentReport(**body)) == fingerprint(IncidentReport(**body))
    assert fingerprint(IncidentReport(**body)) != fingerprint(IncidentReport(**(body | {"harm": "low"})))


def test_a_moment_written_with_another_offset_is_the_same_report_and_earlier_fingerprints_still_match():
    body = report(occurred_at="2025-03-30T01:30:00+00:00", riddor_reported_at="2025-10-26T01:30:00+00:00")
    # Across both clock changes: British Summer Time, then back to Greenwich Mean Time.
    local = body | {"occurred_at": "2025-03-30T02:30:00+01:00", "riddor_reported_at": "2025-10-26T01:30:00Z"}
    same, moved = IncidentReport(**local), IncidentReport(**(body | {"occurred_at": "2025-03-30T02:30:00+00:00"}))
    assert fingerprint(IncidentReport(**body)) == fingerprint(same) != fingerprint(moved)
    # A fingerprint stored before instants counted was taken of the times as given.
    as_given = hashlib.sha256(orjson.dumps(same.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)).hexdigest()
    assert as_given != fingerprint(same) and as_given in fingerprints(same)
    assert not set(fingerprints(same)) & set(fingerprints(moved))


def test_the_perpetrator_s_identifier_copied_into_a_published_field_is_refused_naming_each_field():
    n = TEST_NHS_NUMBER
    spaced = f"{n[:3]} {n[3:6]} {n[6:]}"
    with pytest.raises(ValidationError) as refused:
        IncidentReport(**report(site=f"Ward 4, patient {spaced}", source_system=f"datix-{n}",
                                source_ref=f"{n}-2025-03", police={"informed": True, "crime_reference": f"NHS{n}"}))
    errors = {e["loc"]: e["msg"] for e in refused.value.errors()}
    # The source's reference is not published, but is kept in clear past the retention purge.
    assert set(errors) == {("site",), ("source_system",), ("source_ref",), ("police", "crime_reference")}
    assert all(m.endswith("holds the perpetrator's NHS number, which never leaves intake") for m in errors.values())
    assert n not in str(refused.value.errors())  # the error never echoes it
    with pytest.raises(ValidationError, match="local id"):
        IncidentReport(**report(perpetrator={"kind": "patient", "local_id": "rx-123456"}, site="Ward RX 123456"))
    # Digits in another form are the same digits: full-width, or Arabic-Indic.
    for written in (n.translate({ord("0") + d: 0xFF10 + d for d in range(10)}),
                    n.translate({ord("0") + d: 0x0660 + d for d in range(10)})):
        with pytest.raises(ValidationError, match="NHS number") as refused:
            IncidentReport(**report(site=f"Ward {written}"))
        assert [e["loc"] for e in refused.value.errors()] == [("site",)]
    with pytest.raises(ValidationError, match="local id"):
        IncidentReport(**report(perpetrator={"kind": "patient", "local_id": "rx-123456"}, site="Ward ＲＸ１２３４５６"))
    # A short local id is found in many a site's name: not refused; nor another number.
    assert IncidentReport(**report(perpetrator={"kind": "patient", "local_id": "12"}, site="Ward 12")).site == "Ward 12"
    assert IncidentReport(**report(police={"informed": True, "crime_reference": "4012345678"})).police


def test_an_identifier_in_a_published_field_is_named_beside_the_report_s_other_errors():
    # Named only once the rest was mended, the sender would mend the report twice.
    n, spaced = TEST_NHS_NUMBER, f"{TEST_NHS_NUMBER[:3]} {TEST_NHS_NUMBER[3:6]} {TEST_NHS_NUMBER[6:]}"
    perpetrator = {"kind": "patient", "nhs_number": spaced, "local_id": "rx-123456", "age_band": "adult"}
    for parse in (lambda b: IncidentReport(**b), lambda b: IncidentReport.model_validate_json(orjson.dumps(b))):
        with pytest.raises(ValidationError) as refused:
            parse(report(harm="catastrophic", perpetrator=perpetrator, site=f"Ward {n}", source_ref="RX 123456",
                         police={"informed": True, "crime_reference": "CR/1", "referred_at": "soon"}))
        errors = {e["loc"]: (e["type"], e["msg"]) for e in refused.value.errors()}
        assert set(errors) == {("harm",), ("perpetrator", "age_band"), ("police", "referred_at"), ("site",),
                               ("source_ref",)}
        assert errors[("harm",)][0] == "enum" and errors[("site",)][1].endswith("holds the perpetrator's NHS number,"
                                                                               " which never leaves intake")
        assert errors[("source_ref",)][1].endswith("local id, which never leaves intake")
        assert n not in str(refused.value.errors())
    # An identifier that is itself refused is named for that, and not looked for elsewhere: a
    # wrong check digit, a placeholder, or one given for a perpetrator of kind unknown.
    for perpetrator, text in (({"kind": "patient", "nhs_number": "9434765918"}, "Ward 9434765918"),
                              ({"kind": "patient", "nhs_number": "0000000000"}, "R0000000000"),
                              ({"kind": "unknown", "nhs_number": n}, f"Ward {n}"),
                              ({"kind": "unknown", "local_id": "RX123456"}, "Ward RX123456")):
        with pytest.raises(ValidationError) as refused:
            IncidentReport(**report(perpetrator=perpetrator, site=text))
        assert [e["loc"][:2] for e in refused.value.errors()] == [
            ("perpetrator", "nhs_number" if "nhs_number" in perpetrator else "local_id")], perpetrator


def test_the_future_is_refused_on_a_report_but_not_judged_again_on_its_event():
    # A consumer's clock may run behind intake's: an event intake accepted must decode anywhere.
    ahead = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    for field in ("occurred_at", "riddor_reported_at"):
        with pytest.raises(ValidationError) as err:
            IncidentReport(**report(**{field: ahead}))
        assert [e["loc"] for e in err.value.errors()] == [(field,)]
    event = envelope(incident(), source="/test", subject=None)
    body = orjson.loads(encode(event))
    body["data"]["occurred_at"] = ahead
    assert decode(orjson.dumps(body)).data.occurred_at == datetime.fromisoformat(ahead)


def test_a_batch_line_or_a_dead_letter_names_an_unknown_key_only_when_it_looks_like_a_field():
    from schemas.events import describe_error
    from services.intake.bulk import parse

    line = parse(1, orjson.dumps(report() | {"Jane Example 9434765919": 1, "harmm": "low"}))
    assert sorted(e["field"] for e in line.errors) == ["(unknown field)", "harmm"]
    with pytest.raises(ValidationError) as refused:
        IncidentReport(**report() | {"Jane Example 9434765919": 1})
    assert describe_error(refused.value).startswith("(unknown field): ")


@pytest.mark.parametrize(("perpetrator", "expected"), [
    ({"kind": "patient", "nhs_number": "9434765919"}, ("nhs_number", "9434765919")),
    ({"kind": "patient", "local_id": "MRN:004512"}, ("local_id", "MRN:004512")),
    ({"kind": "visitor", "local_id": "v-17"}, ("local_id", "V-17")),
])
def test_a_stored_identifier_reads_back_as_it_was_given(perpetrator, expected):
    # A letter must carry the patient's own identifier: cut at a colon, it could be someone else's.
    r = IncidentReport(**report(perpetrator=perpetrator))
    assert identified(normalised_identifier(r.perpetrator, r.organisation)) == expected


def test_a_batch_line_refused_for_its_source_is_counted_without_the_source_it_named():
    # Whatever a caller writes as source_system must not become a metric label when refused.
    from services.intake import bulk
    from vanda.apikeys import ApiKey

    named = "Jane Smith 07700 900123"
    line = bulk.parse(1, orjson.dumps(report(source_system=named)))
    assert line.source == named
    bulk.forbid(line, ApiKey("k1", "Datix", frozenset({"datix"})))
    assert (line.report, line.source, line.reason) == (None, None, "forbidden")
    allowed = bulk.parse(2, orjson.dumps(report(source_system="datix")))
    bulk.forbid(allowed, ApiKey("k1", "Datix", frozenset({"datix"})))
    assert allowed.source == "datix" and allowed.report is not None


def test_a_local_id_kept_as_a_digest_is_told_in_free_text_and_never_given_back():
    sealed, length = KEYRING.seal_local_id("rx-123 456")
    assert length == 8 and "123456" not in sealed and sealed.startswith("k1:")
    assert KEYRING.local_id_in("MRN RX123456 / ward 4", sealed, length)
    assert not KEYRING.local_id_in("MRN RX123457", sealed, length)
    # After a rotation the earlier key still tells it; once dropped, it cannot.
    rotated = Keyring(2, {1: b"k" * 32, 2: b"n" * 32}, b"identity")
    assert rotated.local_id_in("rx 123456", sealed, length)
    assert not Keyring(2, {2: b"n" * 32}, b"identity").local_id_in("rx 123456", sealed, length)
    assert KEYRING.seal_local_id("AB12") == (None, None) and KEYRING.seal_local_id(None) == (None, None)


async def test_intake_keys_bare_fingerprints_then_purges_at_once_and_every_interval(monkeypatch) -> None:
    # A replica restarted more often than the interval must still purge: the first round runs
    # at start, once the start's keying of bare fingerprints (on the same rows) has finished.
    import asyncio
    from types import SimpleNamespace

    from services.intake import bootstrap, vault

    done: list[str] = []

    async def reseal(pool, keyring) -> int:
        await asyncio.sleep(0.05)
        done.append("keyed")
        return 0

    async def purge(pool, now, retention, actor) -> dict[str, int]:
        done.append(f"purged by {actor}")
        return {}

    monkeypatch.setattr(vault, "reseal_fingerprints", reseal)
    monkeypatch.setattr(vault, "purge", purge)
    deps = SimpleNamespace(store=SimpleNamespace(pool=None), keyring=None, retention=None)
    rounds = asyncio.create_task(bootstrap._key_then_purge(deps, interval_s=3600))
    try:
        for _ in range(100):
            if len(done) == 2:
                break
            await asyncio.sleep(0.01)
    finally:
        rounds.cancel()
    assert done == ["keyed", "purged by retention-timer"]
