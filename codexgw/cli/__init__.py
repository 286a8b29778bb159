"""The ``codexgw`` command line (click): ``main`` (the group and where each command comes from),
``accounts``, ``scheduling``, ``login``, ``status``, ``configure``, ``serve``, with ``options``
(shared click options) and ``common`` (the error line, opening the store, time formatting).

The top layer under ``__main__``: it may import any layer, nothing imports it. Top-level imports
stay light (click and the sans-IO cores) so ``codexgw --help`` is fast; the store, rich, trio, httpx
and the server stack are imported inside the commands that need them. No command ever prints a
token: only names, identity claims, times and (in ``--json``) token fingerprints.
"""
