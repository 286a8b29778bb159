"""Who holds a refresh lease, and whether that process still exists (issue 16, crash-safe refresh).

A lease's ``owner`` (``refresh_leases.owner``) is ``HOST|PID|START|NONCE``: the host name, the
holder's pid, its start time (field 22 of ``/proc/<pid>/stat``, clock ticks since boot; empty where
there is no ``/proc``) and a random nonce per :class:`~codexgw.auth.refresh.Refresher`. A holder on
this host is **gone** when its pid no longer exists, is a zombie, or now belongs to a process
started at another time (the pid was reused). Such a lease is taken over at once instead of
waiting out its TTL. An owner in another form (an older codexgw) or on another host is never
judged gone: its lease still ends with its TTL.
"""

from __future__ import annotations

import os
import secrets
import socket

__all__ = ["holder_gone", "new_owner", "process_start"]


def process_start(pid: int) -> str | None:
    """The start time of process ``pid`` (``/proc/<pid>/stat`` field 22, as text), ``None`` when
    it cannot be read (no such process, no ``/proc``)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read().decode("ascii", "replace")
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2 :].split()  # after "pid (comm) ": field 3 (state) onwards
    return fields[19] if len(fields) > 19 else None


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read().decode("ascii", "replace")
    except OSError:
        return False
    return stat[stat.rfind(")") + 2 : stat.rfind(")") + 3] in ("Z", "X")


def new_owner() -> str:
    """A lease owner for this process: ``HOST|PID|START|NONCE`` (see the module docstring)."""
    pid = os.getpid()
    return f"{socket.gethostname()}|{pid}|{process_start(pid) or ''}|{secrets.token_hex(4)}"


def holder_gone(owner: str) -> bool:
    """True when ``owner`` names a process on this host that no longer runs (module docstring)."""
    parts = owner.split("|")
    if len(parts) != 4 or parts[0] != socket.gethostname() or not parts[1].isdigit():
        return False
    pid, start = int(parts[1]), parts[2]
    if pid <= 0:  # kill(0) would signal our own process group
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, under another user
        pass
    except OSError:
        return False
    if _zombie(pid):
        return True
    current = process_start(pid)
    return bool(start) and current is not None and current != start
