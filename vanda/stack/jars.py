"""The Kafka broker's jars (resolved by Maven once per machine) and the JVM that runs them."""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

from . import procs
from .procs import StackError

POM_PATH = Path(__file__).resolve().parents[2] / "deploy" / "kafka" / "pom.xml"


def kafka_version(pom: Path = POM_PATH) -> str:
    """Read ``<kafka.version>`` from the POM, the single source of truth for the version."""
    root = ET.parse(pom).getroot()
    for elem in root.iter():
        if elem.tag.rsplit("}", 1)[-1] == "kafka.version" and elem.text:
            return elem.text.strip()
    raise StackError(f"no <kafka.version> property in {pom}")


def cache_root() -> Path:
    """Return the per-user cache directory (``$XDG_CACHE_HOME/vanda``)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "vanda"


def fetch_jars(pom: Path = POM_PATH) -> Path:
    """Copy the broker's runtime jars into the cache once and return the ``libs`` dir."""
    root = cache_root() / f"kafka-{kafka_version(pom)}"
    libs, marker = root / "libs", root / ".complete"
    # The marker holds the POM digest: editing the POM (e.g. a log4j bump) refetches.
    digest = hashlib.sha256(pom.read_bytes()).hexdigest()
    if libs.is_dir() and marker.is_file() and marker.read_text().strip() == digest:
        return libs
    mvn = procs.require_tool("mvn")
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "a+") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)  # two processes fetching at once would clash
        if libs.is_dir() and marker.is_file() and marker.read_text().strip() == digest:
            return libs
        marker.unlink(missing_ok=True)
        partial = root / "libs.partial"
        shutil.rmtree(partial, ignore_errors=True)
        cmd = [mvn, "-q", "-B", "-f", str(pom), "dependency:copy-dependencies",
               "-DincludeScope=runtime", f"-DoutputDirectory={partial}"]
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
        if res.returncode != 0 or not any(partial.glob("kafka_2.13-*.jar")):
            out = (res.stdout + res.stderr)[-4000:]
            raise StackError(f"fetching Kafka jars failed ({' '.join(cmd)}):\n{out}")
        shutil.rmtree(libs, ignore_errors=True)
        partial.rename(libs)
        marker.write_text(digest + "\n")  # written last: an interrupted fetch is redone
    return libs


def java_bin() -> str:
    """Return the ``java`` executable, preferring ``$JAVA_HOME``."""
    home = os.environ.get("JAVA_HOME")
    candidate = str(Path(home) / "bin" / "java") if home else None
    if candidate and os.access(candidate, os.X_OK):
        return candidate
    return procs.require_tool("java")


def render_log4j2(log_file: Path) -> str:
    """Render a log4j2 config that writes INFO to a size-capped file and nothing to the console."""
    return "\n".join([
        "status = warn",
        "name = vanda-kafka",
        "appender.file.type = RollingFile",
        "appender.file.name = FILE",
        f"appender.file.fileName = {log_file}",
        f"appender.file.filePattern = {log_file}.%i",
        "appender.file.layout.type = PatternLayout",
        "appender.file.layout.pattern = [%d] %p %m (%c)%n",
        "appender.file.policies.type = Policies",
        "appender.file.policies.size.type = SizeBasedTriggeringPolicy",
        "appender.file.policies.size.size = 50MB",
        "appender.file.strategy.type = DefaultRolloverStrategy",
        "appender.file.strategy.max = 3",
        "rootLogger.level = INFO",
        "rootLogger.appenderRef.file.ref = FILE",
        "",
    ])
