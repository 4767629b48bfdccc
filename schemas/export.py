"""Generate the checked-in JSON Schema files from the pydantic contracts."""

from __future__ import annotations

import json
from pathlib import Path

from schemas.envelope import CloudEvent
from schemas.events import EVENT_TYPES
from schemas.incidents import IncidentReport

JSON_DIR = Path(__file__).parent / "json"


def generated() -> dict[str, str]:
    """Map file name to JSON Schema text for every contract."""
    models = {m.schema_name(): m for m in EVENT_TYPES.values()}
    models["intake.incident_report.v1"] = IncidentReport
    models["cloudevent.v1"] = CloudEvent
    return {
        f"{name}.schema.json": json.dumps(model.model_json_schema(), indent=2, sort_keys=True) + "\n"
        for name, model in sorted(models.items())
    }


def write(directory: Path = JSON_DIR) -> list[Path]:
    """Write every schema file; return the paths written."""
    directory.mkdir(exist_ok=True)
    for stale in directory.glob("*.schema.json"):
        stale.unlink()
    paths = []
    for name, text in generated().items():
        path = directory / name
        path.write_text(text)
        paths.append(path)
    return paths


def stale(directory: Path = JSON_DIR) -> list[str]:
    """Names of schema files that differ from the models (empty when in sync)."""
    on_disk = {p.name: p.read_text() for p in directory.glob("*.schema.json")}
    wanted = generated()
    return sorted(n for n in set(on_disk) | set(wanted) if on_disk.get(n) != wanted.get(n))
