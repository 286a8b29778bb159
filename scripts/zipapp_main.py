# codexgw's zipapp entry point: the __main__.py of dist/codexgw.pyz, put there by build_zipapp.py in
# place of the two lines shiv writes ("import _bootstrap; _bootstrap.bootstrap()").
#
# It runs before anything else in the archive, so it is written to parse and run on Python 3.6 and
# later (no annotations, no f-strings, nothing newer): an old python3 hears in one line that codexgw
# needs 3.11, instead of a ModuleNotFoundError (3.10) or a SyntaxError (3.9). Then it checks the
# directory shiv unpacks the libraries into on first run (~/.shiv, or $SHIV_ROOT) before shiv tries,
# so a service user with a read-only home hears which directory is not writable and that SHIV_ROOT
# chooses another, instead of a PermissionError traceback. Then shiv's own bootstrap runs as before.
import os
import sys

REQUIRED = (3, 11)


def python_problem(version=None):
    """The one line to print when ``version`` (default: this Python's) is too old, else None."""
    version = tuple(sys.version_info[:2] if version is None else version[:2])
    if version >= REQUIRED:
        return None
    return "codexgw needs Python >= %d.%d (found %d.%d); run it with a newer python3" % (REQUIRED + version)


def _nearest_existing(path):
    while not os.path.exists(path):
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    return path


def unpack_problem(target, shiv_root=None):
    """The one line to print when shiv cannot unpack into ``target`` (its cache directory for this
    build: the one holding ``site-packages``), else None. ``shiv_root``: $SHIV_ROOT, if set."""
    if os.path.isdir(os.path.join(target, "site-packages")):
        return None  # unpacked on an earlier run
    parent = os.path.dirname(target) or "."
    existing = _nearest_existing(parent)
    if os.path.isdir(existing) and os.access(existing, os.W_OK | os.X_OK):
        return None
    where = "SHIV_ROOT=%s" % shiv_root if shiv_root else "~/.shiv"
    return (
        "codexgw.pyz unpacks its libraries on first run into %s (%s), but %s is not writable; "
        "set SHIV_ROOT to a writable directory, e.g. SHIV_ROOT=/var/tmp/codexgw-shiv"
        % (parent, where, existing)
    )


def _fail(problem):
    sys.stderr.write("error: " + problem + "\n")
    sys.exit(1)


def main():
    problem = python_problem()
    if problem:
        _fail(problem)
    import _bootstrap
    from _bootstrap.environment import Environment

    with _bootstrap.current_zipfile() as archive:
        if archive is not None:
            env = Environment.from_json(archive.read("environment.json").decode())
            target = str(_bootstrap.cache_path(archive, env.root, env.build_id))
            problem = unpack_problem(target, os.environ.get("SHIV_ROOT"))
    if problem:
        _fail(problem)
    _bootstrap.bootstrap()


if __name__ == "__main__":
    main()
