#!/usr/bin/env python3
"""Build ``dist/codexgw.pyz``: one executable file holding codexgw and its pure-Python dependencies.

Uses shiv (design §3, §5): reproducible (fixed timestamps), compressed, byte-compiled, shebang
``/usr/bin/env python3``, dependencies pinned by ``requirements.lock``. The result runs with any
CPython >= 3.11 and nothing installed: ``./codexgw.pyz serve``.

shiv's bootstrap unpacks the libraries (to ``~/.shiv`` or ``$SHIV_ROOT``) before any of codexgw runs,
and its ``--preamble`` runs only after that. So the archive's ``__main__.py`` is replaced by
``scripts/zipapp_main.py``, which parses on Python 3.6 and later: it says in one line that codexgw
needs Python 3.11, or which directory is not writable for the unpacking, then hands over to shiv's
bootstrap unchanged (:func:`install_main`).

A build is skipped when the zipapp is newer than every source it is made of (``--force`` rebuilds).

Usage: ``python build_zipapp.py [--output dist/codexgw.pyz] [--force]``
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent
DEFAULT_OUTPUT = ROOT / "dist" / "codexgw.pyz"
MAIN = ROOT / "scripts" / "zipapp_main.py"
"""The archive's ``__main__.py`` (see the module docstring)."""


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
    install_main(output, MAIN.read_text(encoding="utf-8"))
    output.chmod(0o755)
    return output


def install_main(pyz: Path, source: str) -> None:
    """Replace the ``__main__.py`` of the zipapp ``pyz`` with ``source``, keeping its shebang, every
    other entry (order, times, compression, modes) and so the build's reproducibility."""
    data = pyz.read_bytes()
    shebang = data[: data.index(b"\n") + 1] if data.startswith(b"#!") else b""
    tmp = pyz.with_name(pyz.name + ".tmp")
    with zipfile.ZipFile(pyz) as old, tmp.open("wb") as out:
        out.write(shebang)
        with zipfile.ZipFile(out, "w") as new:
            main_info = None
            for info in old.infolist():
                if info.filename == "__main__.py":
                    main_info = info
                    continue
                new.writestr(info, old.read(info))
            if main_info is None:
                raise RuntimeError(f"{pyz} has no __main__.py to replace")
            new.writestr(main_info, source.encode("utf-8"))
    os.replace(tmp, pyz)


def sources() -> list[Path]:
    """Every file a build is made of: the package, the entry point, the locks, pyproject.toml."""
    files = [p for p in (ROOT / "codexgw").rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    return [*files, MAIN, ROOT / "pyproject.toml", ROOT / "requirements.lock", Path(__file__).resolve()]


def up_to_date(output: Path) -> bool:
    """True when ``output`` exists and is newer than every file of :func:`sources`."""
    if not output.exists():
        return False
    built = output.stat().st_mtime
    return all(p.stat().st_mtime <= built for p in sources())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="where to write the .pyz")
    parser.add_argument("--force", action="store_true", help="build even when the zipapp is up to date")
    args = parser.parse_args()
    if not args.force and up_to_date(args.output):
        print(f"{args.output} is up to date (newer than every source); --force rebuilds it")
        return
    path = build(args.output)
    print(f"built {path} ({path.stat().st_size // 1024} KiB)")


if __name__ == "__main__":
    main()
