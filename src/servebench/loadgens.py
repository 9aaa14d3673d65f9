"""Where the load generators are, and which versions they are (metadata.json records them).

hey comes from Debian's package (or ``go install``), vegeta is built by
scripts/install_vegeta.sh into ``.tools/bin`` (or named by ``$SERVEBENCH_VEGETA``). Kept apart
from the modules that run them so that the run's metadata can name them without importing a
measuring phase.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from servebench.paths import ROOT, TOOLS_BIN

VEGETA_ENV = "SERVEBENCH_VEGETA"
VEGETA_VERSION = "v12.13.0"


class HeyNotFoundError(FileNotFoundError):
    """hey is not on PATH."""


def hey_path() -> str:
    found = shutil.which("hey")
    if found is None:
        raise HeyNotFoundError(
            "hey is not installed: `apt-get install hey` (Debian/Ubuntu) or "
            "`go install github.com/rakyll/hey@latest`; `make setup` does this where it can"
        )
    return found


def hey_version() -> str | None:
    """hey has no --version; Debian's package version is the best record."""
    if shutil.which("dpkg-query"):
        result = subprocess.run(
            ["dpkg-query", "-W", "-f=${Version}", "hey"], capture_output=True, text=True
        )
        if result.returncode == 0 and result.stdout:
            return f"hey {result.stdout} (Debian)"
    return "hey (installed)" if shutil.which("hey") else None


class VegetaNotFoundError(FileNotFoundError):
    """vegeta is not installed where the harness looks for it."""


def vegeta_path() -> Path:
    """The vegeta binary: $SERVEBENCH_VEGETA if set, else <root>/.tools/bin/vegeta."""
    override = os.environ.get(VEGETA_ENV)
    path = Path(override) if override else TOOLS_BIN / "vegeta"
    if not (path.is_file() and os.access(path, os.X_OK)):
        where = f"${VEGETA_ENV}={override}" if override else str(path)
        raise VegetaNotFoundError(
            f"vegeta not found at {where}: run scripts/install_vegeta.sh / make setup "
            f"(needs Go; builds github.com/tsenart/vegeta/v12@{VEGETA_VERSION} into "
            f"{ROOT / '.tools' / 'bin'}), or point ${VEGETA_ENV} at a vegeta binary"
        )
    return path


def vegeta_version(path: Path | None = None) -> str:
    """vegeta's version: from ``-version``, else from the Go build info inside the binary
    (``go install`` builds print an empty ``Version:``)."""
    path = path or vegeta_path()
    out = subprocess.run([str(path), "-version"], capture_output=True, text=True).stdout
    match = re.search(r"^Version:[ \t]*(\S+)", out, re.MULTILINE)
    if match:
        return match.group(1)
    found = re.search(rb"\tgithub\.com/tsenart/vegeta/v12\t(v[0-9][\w.+-]*)", path.read_bytes())
    return found.group(1).decode() if found else "unknown"


def vegeta_version_or_none() -> str | None:
    """'vegeta <version>' for metadata.json; None when vegeta is not installed."""
    try:
        return f"vegeta {vegeta_version()}"
    except VegetaNotFoundError:
        return None
