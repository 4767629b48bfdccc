"""Pseudonyms that survive key rotation, and the encrypted identity behind each one.

A subject keeps the id its first key gave it: the digest under the current key is looked
up first, then under each previous key, and the digests under every configured key are
then recorded for the same subject. Recording the previous keys' too is what lets a
rotation roll out replica by replica (or be rolled back): a replica that knows only the
earlier key still finds a subject first seen by one that knows the new key. The
identifier itself is stored only encrypted, for correspondence.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from schemas.incidents import MIN_LOCAL_ID, identifier_in, letters_and_digits
from vanda.runtime.db import PURGE_CHUNK, in_chunks
from vanda.runtime.rows import insert_many

log = logging.getLogger(__name__)
IDENTITY_COLUMNS = (("subject_id", "text"), ("kind", "text"), ("organisation", "text"), ("nonce", "bytea"),
                    ("ciphertext", "bytea"), ("key_id", "text"))
# Keys a report's digest apart from the pseudonyms made with the same key (identifiers never
# start with it).
FINGERPRINT_CONTEXT = b"report-fingerprint:"
KEY_ID_CONTEXT = b"identity-key-id:"
PSEUDONYM_KEY_ID_CONTEXT = b"pseudonym-key-id:"
LOCAL_ID_CONTEXT = b"local-id:"


@dataclass(frozen=True)
class Keyring:
    current_version: int
    keys: dict[int, bytes]  # version -> HMAC key, current included
    identity_key: bytes
    previous_identity_keys: tuple[bytes, ...] = ()  # still read, never written

    def digests(self, identifier: str) -> list[tuple[int, str]]:
        """(version, digest) for every key, current first, then newest previous."""
        order = [self.current_version] + sorted((v for v in self.keys if v != self.current_version), reverse=True)
        return [(v, hmac.new(self.keys[v], identifier.encode(), hashlib.sha256).hexdigest()) for v in order]

    def seal_fingerprint(self, digest: str) -> str:
        """A report's digest keyed under the current pseudonym key, as `k<version>:<hex>`.

        The digest covers the whole report, NHS number included: kept bare, anyone reading
        the table who knows or guesses the rest of a report (most of it is in its event)
        could try NHS numbers against it, and a check digit leaves few to try.
        """
        return f"k{self.current_version}:{self._keyed(self.current_version, digest)}"

    def fingerprint_matches(self, stored: str, digest: str) -> bool:
        """Whether a stored fingerprint is of the report with this digest: keyed under any
        configured key, or bare (stored before they were keyed, until resealed)."""
        version, keyed, sealed = stored.partition(":")
        if not keyed:
            return hmac.compare_digest(stored, digest)
        v = int(version[1:]) if version[1:].isdigit() else None
        return v in self.keys and hmac.compare_digest(sealed, self._keyed(v, digest))

    def seal_local_id(self, local_id: str | None) -> tuple[str | None, int | None]:
        """A local id kept only as a keyed digest, `k<version>:<hex>`, with its length: enough to
        tell it in free text, never to give it back. (None, None) if none, or too short to look for."""
        text = letters_and_digits(local_id or "")
        if len(text) < MIN_LOCAL_ID:
            return None, None
        return f"k{self.current_version}:{self._local(self.current_version, text)}", len(text)

    def can_check(self, sealed: str) -> bool:
        """Whether this keyring has the pseudonym key a local id's digest was made under."""
        version = sealed.partition(":")[0]
        return version[1:].isdigit() and int(version[1:]) in self.keys

    def local_id_in(self, text: str, sealed: str | None, length: int | None) -> bool:
        """Whether `text` (spaces and punctuation ignored) holds the local id `seal_local_id` sealed."""
        if not sealed or not length or not self.can_check(sealed):
            return False
        version, _, digest = sealed.partition(":")
        v = int(version[1:])
        found = letters_and_digits(text)
        return any(hmac.compare_digest(self._local(v, found[i:i + length]), digest)
                   for i in range(len(found) - length + 1))

    def _local(self, version: int, text: str) -> str:
        return hmac.new(self.keys[version], LOCAL_ID_CONTEXT + text.encode(), hashlib.sha256).hexdigest()

    def _keyed(self, version: int, digest: str) -> str:
        return hmac.new(self.keys[version], FINGERPRINT_CONTEXT + digest.encode(), hashlib.sha256).hexdigest()

    @property
    def identity_key_id(self) -> str:
        return key_id(self.identity_key)


def key_id(key: bytes, context: bytes = KEY_ID_CONTEXT) -> str:
    """Names a key (an identity key in the rows it sealed, by default): a digest, from which the
    key cannot be had."""
    return hashlib.sha256(context + key).hexdigest()[:16]


class KeySwapped(Exception):
    """A pseudonym key version configured with another key than the one it was first used with."""


async def check_pseudonym_keys(pool: asyncpg.Pool, keyring: Keyring) -> None:
    """Refuse a pseudonym key version configured with another key than the one its pseudonyms
    were made with: replaced without a new version, it would give every person a new subject,
    silently, and miss every local id and retry stored before. Judged by the data where it can
    be (one person known under the version, their digest made again), otherwise by the key
    recorded for the version when intake first started with it."""
    mine = {v: key_id(k, PSEUDONYM_KEY_ID_CONTEXT) for v, k in keyring.keys.items()}
    async with pool.acquire() as conn, conn.transaction():
        # Replicas starting at once with different keys: one at a time, the first key recorded wins.
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext('intake.pseudonym_keys'))")
        stored = {r["version"]: r["key_id"] for r in await conn.fetch(
            "SELECT version, key_id FROM intake.pseudonym_keys WHERE version = ANY($1::int[])", list(mine))}
        for version in sorted(v for v in mine if stored.get(v) != mine[v]):
            found = await _made_with(conn, keyring, version)
            # Another key recorded is replaced only where the data says this one made its
            # pseudonyms (a key recorded by mistake with no one known under it: delete its row).
            if found is False or (found is not True and version in stored):
                raise KeySwapped(_swapped(keyring, version))
            await conn.execute("INSERT INTO intake.pseudonym_keys (version, key_id) VALUES ($1, $2)"
                               " ON CONFLICT (version) DO UPDATE SET key_id = EXCLUDED.key_id, first_seen = now()",
                               version, mine[version])


async def _made_with(conn: asyncpg.Connection, keyring: Keyring, version: int) -> bool | None | str:
    """Whether a person known under `version` has the digest its configured key makes; "none"
    if no one is known under it; None if no such person's identity can be read here."""
    row = await conn.fetchrow("SELECT p.digest, i.subject_id, i.nonce, i.ciphertext FROM intake.pseudonyms p"
                              " JOIN intake.identities i USING (subject_id) WHERE p.key_version = $1 LIMIT 1", version)
    if row is None:
        # No one's identity is kept (purged): the pseudonyms alone cannot say, if there are any.
        known = await conn.fetchval("SELECT EXISTS (SELECT 1 FROM intake.pseudonyms WHERE key_version = $1)", version)
        return None if known else "none"
    try:
        identifier = _open(keyring, bytes(row["nonce"]), bytes(row["ciphertext"]), row["subject_id"])
    except IdentityUnreadable:
        return None
    return hmac.compare_digest(dict(keyring.digests(identifier))[version], row["digest"])


def _swapped(keyring: Keyring, version: int) -> str:
    variable = "INTAKE_PSEUDONYM_KEY" if version == keyring.current_version else "INTAKE_PREVIOUS_PSEUDONYM_KEYS"
    return (f"{variable}: version {version} is not the key this database's pseudonyms were made with under that"
            " version; a new key needs a new INTAKE_PSEUDONYM_KEY_VERSION (the old key moved to"
            " INTAKE_PREVIOUS_PSEUDONYM_KEYS), or every person would get a new subject")


class IdentityUnreadable(Exception):
    """A stored identity that no configured identity key opens: sealed under a key since dropped, or altered."""


def _aead(key: bytes) -> AESGCM:
    # Any secret string becomes a 256-bit key.
    return AESGCM(hashlib.sha256(key).digest())


def _open(keyring: Keyring, nonce: bytes, sealed: bytes, subject_id: str) -> str:
    # After a rotation, rows sealed under an earlier key are still read, until `reseal_identities`
    # (or `remember`, when the subject is next seen) seals them under the current key.
    for key in (keyring.identity_key, *keyring.previous_identity_keys):
        try:
            return _aead(key).decrypt(nonce, sealed, subject_id.encode()).decode()
        except InvalidTag:
            continue
    raise IdentityUnreadable(subject_id)


async def resolve_subject(conn: asyncpg.Connection | asyncpg.Pool, identifier: str, keyring: Keyring) -> str:
    """The subject id for an identifier: the one already known under any key, else a new one."""
    return (await resolve_many(conn, {identifier}, keyring))[identifier]


async def resolve_many(conn: asyncpg.Connection | asyncpg.Pool, identifiers: set[str],
                       keyring: Keyring) -> dict[str, str]:
    """Subject ids for many identifiers in one query: the one already known under any key, else a new one."""
    digests = {identifier: keyring.digests(identifier) for identifier in identifiers}
    pairs = [(v, d) for ds in digests.values() for v, d in ds]
    rows = await conn.fetch("SELECT p.key_version, p.digest, p.subject_id FROM intake.pseudonyms p"
                            " JOIN unnest($1::int[], $2::text[]) AS w(v, d) ON p.key_version = w.v AND p.digest = w.d",
                            [v for v, _ in pairs], [d for _, d in pairs])
    known = {(r["key_version"], r["digest"]): r["subject_id"] for r in rows}
    # The current key first, then the newest previous: a subject keeps the id its first key gave it.
    return {identifier: next((known[p] for p in ds if p in known), f"sub_{ds[0][1][:40]}")
            for identifier, ds in digests.items()}


async def remember(conn: asyncpg.Connection, subject_id: str, identifier: str, organisation: str,
                   keyring: Keyring, also_local: str | None = None, source_system: str | None = None) -> None:
    """Record the current digest and the encrypted identifier, inside the caller's transaction."""
    await remember_many(conn, [(subject_id, identifier, organisation, also_local, source_system)], keyring)


# Subject id, identifier, organisation, a local id given beside an NHS number, and the source
# system that gave it (None: not known, checked for every source).
Person = tuple[str, str, str, str | None, str | None]


async def remember_many(conn: asyncpg.Connection, people: list[Person], keyring: Keyring) -> None:
    """`remember` for many people at once; the last of a subject wins, and every local id given
    beside an NHS number is kept."""
    # Sorted, so two concurrent batches lock the same rows in the same order (no deadlock).
    latest = dict(sorted({s: (i, o) for s, i, o, *_ in people}.items()))
    if not latest:
        return
    await insert_many(conn, "intake.pseudonyms", (("key_version", "int"), ("digest", "text"), ("subject_id", "text")),
                      [(*d, s) for s, (i, _) in latest.items() for d in keyring.digests(i)],
                      "ON CONFLICT DO NOTHING")
    aead, sealed_by = _aead(keyring.identity_key), keyring.identity_key_id
    rows = []
    for subject_id, (identifier, organisation) in latest.items():
        nonce = os.urandom(12)
        sealed = aead.encrypt(nonce, identifier.encode(), subject_id.encode())
        rows.append((subject_id, identifier.split(":", 1)[0], organisation, nonce, sealed, sealed_by))
    await insert_many(
        conn, "intake.identities", IDENTITY_COLUMNS, rows,
        "ON CONFLICT (subject_id) DO UPDATE SET nonce = EXCLUDED.nonce, ciphertext = EXCLUDED.ciphertext,"
        " key_id = EXCLUDED.key_id,"
        # The organisation that reported the person last is the one a letter now comes from.
        " kind = EXCLUDED.kind, organisation = EXCLUDED.organisation, last_seen = now()"
        # Retention counts in days: a subject seen again within the hour need not be rewritten,
        # unless by another organisation, which letters must now come from.
        " WHERE intake.identities.last_seen < now() - interval '1 hour'"
        " OR intake.identities.organisation IS DISTINCT FROM EXCLUDED.organisation")
    await insert_many(conn, "intake.local_ids", LOCAL_ID_COLUMNS, _local_ids(people, keyring),
                      # The same id from another source: it knows it already, so every source is checked for it.
                      "ON CONFLICT (subject_id, digest) DO UPDATE SET source_system = NULL"
                      " WHERE intake.local_ids.source_system IS NOT NULL"
                      " AND intake.local_ids.source_system IS DISTINCT FROM EXCLUDED.source_system")


LOCAL_ID_COLUMNS = (("subject_id", "text"), ("digest", "text"), ("length", "int"), ("source_system", "text"))


def _local_ids(people: list[Person], keyring: Keyring) -> list[tuple[str, str, int, str | None]]:
    """One row per subject and local id, sorted (lock order), with the source that gave it, or
    None where two sources in the batch gave the same id (one statement may not touch a row twice)."""
    given: dict[tuple[str, str], tuple[int, set[str | None]]] = {}
    for subject_id, _, _, local, source in people:
        digest, length = keyring.seal_local_id(local)
        if digest is not None and length is not None:
            given.setdefault((subject_id, digest), (length, set()))[1].add(source)
    return [(s, d, n, next(iter(sources)) if len(sources) == 1 else None)
            for (s, d), (n, sources) in sorted(given.items())]


async def follow_active_reports(conn: asyncpg.Connection, subject_id: str) -> None:
    """After a report is withdrawn (the wrong person, say), the organisation a letter comes from
    is again the one that reported the person last among the reports that stand."""
    # The row first, then the reports in a statement of their own: one statement reads them as
    # at its start, so a report that committed while it waited for the row would be missed.
    held = await conn.fetchval("SELECT organisation FROM intake.identities WHERE subject_id = $1 FOR UPDATE",
                               subject_id)
    # Reports of one batch share their received_at; ids are time-ordered and break the tie.
    latest = await conn.fetchval("SELECT event->>'organisation' FROM intake.incidents WHERE subject_id = $1"
                                 " AND withdrawn_at IS NULL ORDER BY received_at DESC, incident_id DESC LIMIT 1",
                                 subject_id)
    if held is not None and latest is not None and latest != held:
        await conn.execute("UPDATE intake.identities SET organisation = $2 WHERE subject_id = $1", subject_id, latest)


async def reveal(pool: asyncpg.Pool, subject_id: str, keyring: Keyring, actor: str, purpose: str,
                 organisations: frozenset[str] | None = None) -> dict | None:
    """Who a subject is, for a letter; the read is audited whether or not it finds anyone. With
    `organisations`, only a subject one of them reported last (the one a letter comes from;
    among reports that stand, while any does): for another, None as for no one, and the
    attempt audited without its purpose. A trust whose only report about someone was withdrawn
    can still read who they are: a card sent before the withdrawal is owed a letter taking it back."""
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow("SELECT kind, organisation, nonce, ciphertext FROM intake.identities"
                                  " WHERE subject_id = $1", subject_id)
        allowed = row is None or organisations is None or row["organisation"] in organisations
        await conn.execute("INSERT INTO intake.audit (actor, action, subject_id, purpose) VALUES ($1, $2, $3, $4)",
                           actor, "identity_read" if allowed else "identity_read_refused", subject_id,
                           purpose if allowed else None)
    if row is None or not allowed:
        return None
    identifier = _open(keyring, bytes(row["nonce"]), bytes(row["ciphertext"]), subject_id)
    field, value = identified(identifier)
    return {"subject_id": subject_id, field: value, "organisation": row["organisation"]}


@dataclass(frozen=True)
class Identifiers:
    """What intake holds to tell a subject's identifiers in free text; never returned to anyone."""

    nhs_number: str | None = None
    local_id: str | None = None
    # Local ids given beside the NHS number, as `Keyring.seal_local_id` keeps them: (digest, length).
    local_digests: tuple[tuple[str, int], ...] = ()

    def held_in(self, text: str, keyring: Keyring) -> str | None:
        """Which of them `text` holds ("NHS number", "local id"), if either."""
        if what := identifier_in(text, self.nhs_number, self.local_id):
            return what
        unknown = [d for d, _ in self.local_digests if not keyring.can_check(d)]
        if unknown:
            # Under a pseudonym key this replica lacks (a rotation rolling out): unchecked, said.
            log.warning("%d local id digest(s) are under a pseudonym key this replica lacks: not checked",
                        len(unknown))
        return "local id" if any(keyring.local_id_in(text, d, n) for d, n in self.local_digests) else None


async def identifiers_of(conn: asyncpg.Connection, subject_id: str, keyring: Keyring,
                         source_system: str) -> Identifiers:
    """A subject's identifiers, for intake's own check that an amendment to an incident from
    `source_system` does not publish them: of the local ids given beside the NHS number, only
    those that source gave (and those of no one source), since a refusal tells the caller the
    text held one. A source is bound to the caller's API key; the organisation a report names
    is not. Never returned to anyone, so not a read `reveal` audits. None held if no identity
    is kept (purged, or the person was never identified)."""
    row = await conn.fetchrow("SELECT nonce, ciphertext FROM intake.identities WHERE subject_id = $1", subject_id)
    if row is None:
        return Identifiers()
    field, value = identified(_open(keyring, bytes(row["nonce"]), bytes(row["ciphertext"]), subject_id))
    if field != "nhs_number":
        return Identifiers(local_id=value)
    kept = await conn.fetch("SELECT digest, length FROM intake.local_ids WHERE subject_id = $1"
                            " AND (source_system IS NULL OR source_system = $2)", subject_id, source_system)
    return Identifiers(value, None, tuple((r["digest"], r["length"]) for r in kept))


def identified(identifier: str) -> tuple[str, str]:
    """("nhs_number", digits) from `nhs:<digits>`, ("local_id", id) from `local:<ODS>:<id>`.
    A local id is the trust's own free text and may hold colons itself (`MRN:004512`)."""
    kind, _, rest = identifier.partition(":")
    return ("nhs_number", rest) if kind == "nhs" else ("local_id", rest.partition(":")[2])


async def reseal_fingerprints(pool: asyncpg.Pool, keyring: Keyring, chunk: int = 5000) -> int:
    """Key every fingerprint stored bare (before they were keyed), a chunk at a time; return
    how many. Safe beside other replicas doing the same: a row is changed only from its bare value."""
    total = 0
    while rows := await pool.fetch("SELECT incident_id, fingerprint FROM intake.incidents"
                                   " WHERE fingerprint NOT LIKE 'k%' LIMIT $1", chunk):
        await pool.execute(
            "UPDATE intake.incidents i SET fingerprint = u.sealed"
            " FROM unnest($1::uuid[], $2::text[], $3::text[]) AS u(incident_id, bare, sealed)"
            " WHERE i.incident_id = u.incident_id AND i.fingerprint = u.bare",
            [r["incident_id"] for r in rows], [r["fingerprint"] for r in rows],
            [keyring.seal_fingerprint(r["fingerprint"]) for r in rows])
        total += len(rows)
    return total


@dataclass(frozen=True)
class Resealed:
    resealed: int  # sealed anew under the current key
    left: int  # a configured earlier key opens them, yet they are not under the current key (changed meanwhile)
    foreign: int  # sealed under a key this replica lacks: a newer one not yet given to it, or one dropped
    unopened: int  # should open (earlier key, or sealed before key ids were kept) but do not: altered


async def reseal_identities(pool: asyncpg.Pool, keyring: Keyring, chunk: int = 1000) -> Resealed:
    """Seal every identity under the current key, a chunk at a time, so that after a rotation
    the earlier key can be dropped once `left` reads 0 on every replica. Safe beside `remember`
    and other replicas: a row is rewritten only if it still holds what was read."""
    current, known = keyring.identity_key_id, {key_id(k) for k in keyring.previous_identity_keys}
    after, resealed, left, foreign, unopened = "", 0, 0, 0, 0
    aead = _aead(keyring.identity_key)
    while rows := await pool.fetch("SELECT subject_id, nonce, ciphertext, key_id FROM intake.identities"
                                   " WHERE key_id IS DISTINCT FROM $1 AND subject_id > $2 ORDER BY subject_id LIMIT $3",
                                   current, after, chunk):
        after, anew = rows[-1]["subject_id"], []
        for row in rows:
            if row["key_id"] is not None and row["key_id"] not in known:
                foreign += 1
                continue
            subject_id, nonce = row["subject_id"], bytes(row["nonce"])
            try:
                identifier = _open(keyring, nonce, bytes(row["ciphertext"]), subject_id)
            except IdentityUnreadable:
                unopened += 1
                continue
            fresh = os.urandom(12)
            anew.append((subject_id, nonce, fresh, aead.encrypt(fresh, identifier.encode(), subject_id.encode())))
        done = int((await pool.execute(
            "UPDATE intake.identities i SET nonce = u.nonce, ciphertext = u.ciphertext, key_id = $5"
            " FROM unnest($1::text[], $2::bytea[], $3::bytea[], $4::bytea[]) AS u(subject_id, was, nonce, ciphertext)"
            " WHERE i.subject_id = u.subject_id AND i.nonce = u.was",
            *([a[n] for a in anew] for n in range(4)), current)).split()[-1])
        resealed, left = resealed + done, left + len(anew) - done
    return Resealed(resealed, left, foreign, unopened)


async def purge(pool: asyncpg.Pool, now: datetime, retention: timedelta, actor: str,
                chunk: int = PURGE_CHUNK) -> dict[str, int]:
    """Drop narratives, identities (with their local ids) and the purposes given to read them
    older than the retention period, `chunk` rows per transaction; events and aggregates stay."""
    cutoff = now - retention
    counts = {
        "narratives": await in_chunks(pool, "intake.incidents", "UPDATE intake.incidents SET narrative = NULL",
                                      "narrative IS NOT NULL AND received_at < $1", cutoff, chunk=chunk),
        "identities": await in_chunks(pool, "intake.identities", "DELETE FROM intake.identities",
                                      "last_seen < $1", cutoff, chunk=chunk),
        # Who read whose identity stays; why, in their own words, goes with the identities.
        "purposes": await in_chunks(pool, "intake.audit",
                                    "UPDATE intake.audit SET purpose = NULL, purpose_purged_at = now()",
                                    "action = 'identity_read' AND purpose IS NOT NULL AND at < $1", cutoff,
                                    chunk=chunk),
    }
    await pool.execute("INSERT INTO intake.audit (actor, action, purpose) VALUES ($1, 'retention_purge', $2)",
                       actor, f"{counts} older than {cutoff.isoformat()}")
    return counts
