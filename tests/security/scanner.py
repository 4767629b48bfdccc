"""Find NHS numbers and test narratives in text: the engine of the leak scan.

Two kinds of needle:

- any standalone 10-digit token (optionally grouped 3-3-4 by spaces or dashes) whose
  digits pass the NHS number modulus 11 check, wherever the text is ours (topics, our
  services' logs, our tables);
- the exact NHS numbers and narratives the test modules send, wherever the text is
  (third-party logs included), because those are what a leak of the suite would carry.

A finding names where it was and a masked token, never the whole number, so a failing
scan does not copy the identifier into yet another log.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from schemas.incidents import nhs_number_is_valid

# Standalone: no letter or digit either side, so hex digests, UUIDs, 13-digit epoch
# milliseconds and 20-digit Kafka segment names are not mistaken for one.
NHS_LIKE = re.compile(r"(?<![0-9A-Za-z])\d{3}[ -]?\d{3}[ -]?\d{4}(?![0-9A-Za-z])")

# How the test modules write NHS numbers: a quoted literal, plain or grouped.
_QUOTED_NUMBER = re.compile(r"""["'](\d{3}[ -]?\d{3}[ -]?\d{4})["']""")
# How they write narratives: `narrative=...`, `"narrative": ...` or a NARRATIVE constant.
_NARRATIVE_LITERAL = re.compile(r"""narrative["']?\s*[:=]\s*f?["']([^"'\n]{8,})["']""", re.IGNORECASE)


def digits_of(token: str) -> str:
    return token.replace(" ", "").replace("-", "")


def mask(token: str) -> str:
    """Enough of a number to find it again among the test constants, not enough to use it."""
    digits = digits_of(token)
    return f"{digits[:3]}****{digits[-3:]}" if len(digits) >= 6 else "***"


def nhs_like_tokens(text: str) -> list[str]:
    """Every standalone token in `text` that reads as a valid NHS number."""
    return [m.group() for m in NHS_LIKE.finditer(text) if nhs_number_is_valid(digits_of(m.group()))]


def is_plausible_identifier(digits: str) -> bool:
    """A valid check digit on something other than one digit repeated (0000000000 passes mod 11)."""
    return nhs_number_is_valid(digits) and len(set(digits)) > 1


@dataclass(frozen=True)
class Needles:
    """What the suite itself sends: exact NHS numbers and narrative phrases."""

    numbers: frozenset[str]
    phrases: frozenset[str]

    def exact_hits(self, text: str) -> list[str]:
        hits = [mask(m.group()) for m in NHS_LIKE.finditer(text) if digits_of(m.group()) in self.numbers]
        # A number embedded in a longer run of digits or letters is not a standalone token,
        # but a plain substring of a known number is still worth reporting.
        hits += [mask(n) for n in self.numbers if n in text and mask(n) not in hits]
        hits += [f"narrative {p[:12]!r}..." for p in self.phrases if p in text]
        return hits


def collect_needles(test_root: Path, extra_sources: Iterable[Path] = ()) -> Needles:
    """The NHS numbers and narratives written as literals in the test modules (and `extra_sources`)."""
    numbers: set[str] = set()
    phrases: set[str] = set()
    for path in [*sorted(test_root.rglob("*.py")), *extra_sources]:
        source = path.read_text(encoding="utf-8", errors="replace")
        numbers |= {d for m in _QUOTED_NUMBER.finditer(source) if is_plausible_identifier(d := digits_of(m.group(1)))}
        # The first words are distinctive; the tail may be cut or rephrased by a template.
        phrases |= {m.group(1).strip()[:40] for m in _NARRATIVE_LITERAL.finditer(source)}
    return Needles(frozenset(numbers), frozenset(p for p in phrases if len(p) >= 8))


@dataclass(frozen=True)
class Finding:
    where: str
    what: str

    def __str__(self) -> str:
        return f"{self.where}: {self.what}"


def scan_text(text: str, where: str, needles: Needles, *, pattern: bool = True) -> Iterator[Finding]:
    """Findings in one text; `pattern=False` looks for the exact needles only."""
    found = set()
    if pattern:
        found |= {mask(t) for t in nhs_like_tokens(text)}
    found |= set(needles.exact_hits(text))
    for what in sorted(found):
        yield Finding(where, what)


def scan_lines(text: str, where: str, needles: Needles, *, pattern: bool = True) -> Iterator[Finding]:
    """Like scan_text, naming the line of each finding."""
    for number, line in enumerate(text.splitlines(), 1):
        yield from scan_text(line, f"{where}:{number}", needles, pattern=pattern)


def scan_file(path: Path, needles: Needles, *, pattern: bool = True, label: str | None = None) -> Iterator[Finding]:
    text = path.read_bytes().decode("utf-8", errors="replace")
    yield from scan_lines(text, label or str(path), needles, pattern=pattern)
