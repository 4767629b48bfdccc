"""The README's reference tables stay true: every setting, metric and topic the code has is there."""

from __future__ import annotations

import re

import pytest
from pydantic_settings import BaseSettings

import services.intake.config
import services.reporting.config
import services.sanctions.config
import vanda.runtime.auth
import vanda.runtime.transport
from schemas import topics
from tests.conftest import ROOT
from tests.unit.test_observability import EXPOSED
from vanda.runtime.settings import CommonSettings

README = (ROOT / "README.md").read_text(encoding="utf-8")
SETTINGS: tuple[type[BaseSettings], ...] = (
    CommonSettings, vanda.runtime.transport.TransportSettings, vanda.runtime.auth.AuthSettings,
    services.intake.config.IntakeSettings, services.sanctions.config.SanctionsSettings,
    services.reporting.config.ReportingSettings)


def section(title: str) -> str:
    """The README's text under a `## title` heading, up to the next one."""
    found = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## )", README, re.S | re.M)
    assert found, f"README has no '## {title}' section"
    return found.group(1)


def table_names(text: str) -> set[str]:
    """Every `NAME` in the first column of the markdown tables in `text`."""
    names: set[str] = set()
    for line in text.splitlines():
        if line.startswith("| `"):
            names |= set(re.findall(r"`([^`]+)`", line.split(" | ")[0]))
    return names


def env_names(settings: type[BaseSettings]) -> set[str]:
    prefix = settings.model_config.get("env_prefix") or ""
    return {(prefix + field).upper() for field in settings.model_fields}


@pytest.mark.parametrize("settings", SETTINGS, ids=lambda s: s.__name__)
def test_every_setting_has_a_row_in_the_configuration_table(settings: type[BaseSettings]) -> None:
    missing = env_names(settings) - table_names(section("Configuration"))
    assert not missing, f"add to README's configuration table: {sorted(missing)}"


def test_every_exposed_metric_is_described_in_the_metrics_section() -> None:
    text = section("Metrics")
    missing = [name for name in EXPOSED if name.startswith("vanda_") and f"`{name}`" not in text]
    assert not missing, f"add to README's metrics section: {missing}"


def test_every_topic_has_a_row_in_the_topics_table() -> None:
    names = table_names(section("Topics and guarantees"))
    for topic in (topics.SUBMISSIONS, topics.INCIDENTS, topics.SANCTIONS, topics.POLICE_REFERRALS,
                  topics.BOARD_METRICS, topics.FOOTAGE):
        assert topic in names, topic


def test_a_setting_left_out_of_the_table_is_caught() -> None:
    # The check itself: a table without a row does not hide the setting's absence.
    rows = section("Configuration").splitlines()
    without = "\n".join(line for line in rows if "`REPORTING_ROUNDING_BASE`" not in line)
    assert "REPORTING_ROUNDING_BASE" in env_names(services.reporting.config.ReportingSettings) - table_names(without)
