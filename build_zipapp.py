#!/usr/bin/env python3
"""Build ``dist/codexgw.pyz``: one executable file holding codexgw and its pure-Python dependencies.

Uses shiv (design §3, §5): reproducible (fixed timestamps), compressed, byte-compiled, shebang
``/usr/bin/env python3``, dependencies pinned by ``requirements.lock``. The result runs with any
CPython >= 3.11 and nothing installed: ``./codexgw.pyz serve``.

Usage: ``python build_zipapp.py [--output dist/codexgw.pyz]``
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
DEFAULT_OUTPUT = ROOT / "dist" / "codexgw.pyz"


def build(output: Path = DEFAULT_OUTPUT) -> Path:
    """Build the zipapp at ``output`` (parent directories created) and return its path.

    Raises:
        subprocess.CalledProcessError: shiv (or the pip run inside it) failed.
    """
    output = output.resolve()
    output.parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env["PIP_CONFIG_FILE"] = os.devnull  # the same build everywhere, whatever the machine's pip.conf says
    env.setdefault("SOURCE_DATE_EPOCH", "1767225600")  # 2026-01-01: reproducible file times
    command = [
        sys.executable, "-m", "shiv",
        "--reproducible", "--compressed", "--compile-pyc",
        "-p", "/usr/bin/env python3",
        "-e", "codexgw.cli.main:main",
        "-o", str(output),
        "--no-cache",
        "-r", str(ROOT / "requirements.lock"),
        str(ROOT),
        "--quiet", "--disable-pip-version-check",
    ]  # fmt: skip
    subprocess.run(command, check=True, env=env, cwd=ROOT)
    output.chmod(0o755)
    return output


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="where to write the .pyz")
    args = parser.parse_args()
    path = build(args.output)
    print(f"built {path} ({path.stat().st_size // 1024} KiB)")


if __name__ == "__main__":
    main()
