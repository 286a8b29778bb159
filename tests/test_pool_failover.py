"""The failover decision core (``codexgw.pool.failover``): every row of the README's failover table.

Each case names the README row it checks (its "Upstream condition" cell); a test pins that every
row has a case and that the row's wording agrees with the decision (moves on, relays, marks, cools).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from codexgw.errors import (
    CodexgwError,
    PoolExhaustedError,
    UpstreamConnectionError,
    UpstreamError,
    UpstreamStatusError,
    UsageLimitError,
)
from codexgw.pool.exhausted import in_scope, in_words
from codexgw.pool.failover import (
    EXHAUSTED_ANSWER,
    Action,
    AttemptFailure,
    AttemptState,
    CoolDown,
    CoolingMix,
    Decision,
    EndedBeforeOutput,
    FailedBeforeOutput,
    MarkStatus,
    NoJsonObject,
    RefreshFailed,
    Refused,
    TransportFailed,
    cooling_mix,
    decide,
    exhausted_answer,
)
from codexgw.pool.health import AccountStatus
from codexgw.pool.scheduler import Unavailable
from codexgw.translate.classify import classify

NOW = 1_700_000_000.0
README = Path(__file__).resolve().parent.parent / "README.md"
CLOUDFLARE_PAGE = (
    b"<!DOCTYPE html><html><head><title>Attention Required! | Cloudflare</title></head>"
    b"<body>Sorry, you have been blocked</body></html>"
)
NEEDS_LOGIN = "the Codex backend refused the token even after a refresh (HTTP 401)"
SUSPENDED = "the Codex backend says the account is deactivated (HTTP 403)"
CLOUDFLARE = "the Codex backend answered a Cloudflare challenge (HTTP 403)"
NO_PLAN = "the account's plan does not include Codex (usage_not_included)"


def readme_rows() -> dict[str, str]:
    """``{condition: what codexgw does}`` of the failover table in README.md."""
    text = README.read_text()
    section = text[text.index("**Pool and failover.**") :]
    table = section[section.index("| Upstream condition |") :].split("\n\n", 1)[0]
    rows = {}
    for line in table.splitlines()[2:]:
        condition, does = (cell.strip() for cell in line.strip().strip("|").split(" | ", 1))
        rows[condition] = does
    return rows


def refused(status: int, body: Any = None, headers: dict[str, str] | None = None) -> Refused:
    content = body if isinstance(body, bytes) else json.dumps(body).encode() if body is not None else b""
    return Refused(classify(status, content), headers or {}, content)


def err(error: CodexgwError | None) -> dict[str, Any] | None:
    """The facts of an error a client would see (class, status, type, code, message, headers …)."""
    if error is None:
        return None
    facts = {
        "class": type(error).__name__,
        "status": error.status,
        "type": error.type,
        "code": error.code,
        "message": error.message,
        "headers": dict(error.headers),
    }
    for name in ("resets_at", "plan_type", "body", "retry_after_s"):
        if hasattr(error, name):
            facts[name] = getattr(error, name)
    return facts


def cool(seconds: float, reason: str, *, quota: bool) -> CoolDown:
    return CoolDown(until=NOW + seconds, reason=reason, quota=quota, since=NOW)


@dataclass(frozen=True)
class Case:
    condition: str
    """The README row (its "Upstream condition" cell)."""
    failure: AttemptFailure
    action: Action
    error: CodexgwError | None
    """The expected error, compared by :func:`err` (its class, status, type, code, message …)."""
    cool: CoolDown | None = None
    mark: MarkStatus | None = None
    warning: str | None = None
    state: dict[str, Any] = field(default_factory=dict)

    def check(self) -> None:
        state = AttemptState(**{"account": "alice", "plan_type": "plus", "now": NOW, **self.state})
        decision = decide(self.failure, state)
        assert isinstance(decision, Decision)
        assert (decision.action, decision.cool_down, decision.mark, decision.warning) == (
            self.action,
            self.cool,
            self.mark,
            self.warning,
        )
        assert err(decision.error) == err(self.error)


TIMEOUT = UpstreamConnectionError("the Codex backend timed out (ReadTimeout)")
RATE_BODY = {
    "error": {"code": "rate_limit_exceeded", "message": "Rate limit reached. Please try again in 11.054s."}
}
USAGE_BODY = {
    "error": {
        "type": "usage_limit_reached",
        "message": "The usage limit has been reached",
        "plan_type": "pro",
        "resets_in_seconds": 600,
    }
}
LIMIT_MESSAGE = "The usage limit has been reached"


def usage_limit(seconds: float, plan: str | None, message: str = LIMIT_MESSAGE) -> dict[str, Any]:
    return {
        "action": Action.MOVE_ON,
        "error": UsageLimitError(message, resets_at=NOW + seconds, plan_type=plan, now=NOW),
        "cool": cool(seconds, "usage_limit", quota=True),
        "warning": f"account alice hit its usage limit; cooling down for {seconds:.0f} s",
    }


def move_on(error: CodexgwError, **kw: Any) -> dict[str, Any]:
    return {"action": Action.MOVE_ON, "error": error, **kw}


C429 = "429 `usage_limit_reached`"
CNI = "429 or 403 `usage_not_included`"
C429_OTHER = "other 429 (`rate_limit_exceeded` …)"
CFAILED_LIMIT = (
    "`response.failed` before output: `usage_limit_reached`, `insufficient_quota`, `rate_limit_exceeded`"
)
CFAILED_NI = "`response.failed` before output: `usage_not_included`"
CFAILED_OVERLOAD = "`response.failed` before output: `server_is_overloaded`, `slow_down`, `server_error`"
CFAILED_OTHER = "`response.failed` before output, any other code (`context_length_exceeded` …)"

DECIDE_CASES = [
    Case("401", refused(401, {"error": {"code": "token_expired"}}), Action.RETRY, None),
    Case(
        "401 again after that refresh",
        refused(401, {"error": {"code": "token_expired"}}),
        **move_on(
            UpstreamError(f"account alice cannot serve: {NEEDS_LOGIN}"),
            mark=MarkStatus(AccountStatus.NEEDS_LOGIN, NEEDS_LOGIN),
        ),
        state={"refreshed": True},
    ),
    Case(
        "the token refresh fails",
        RefreshFailed("invalid_grant"),
        **move_on(UpstreamError("account alice could not refresh its login: invalid_grant")),
    ),
    Case(C429, refused(429, USAGE_BODY), **usage_limit(600, "pro")),
    Case(
        C429,
        refused(429, {"error": {"type": "usage_limit_reached"}}),
        **usage_limit(60, "plus", '{"error": {"type": "usage_limit_reached"}}'),
    ),
    Case(
        C429,
        refused(429, {"error": {"type": "usage_limit_reached", "message": "m"}}, {"Retry-After": "120"}),
        **usage_limit(120, "plus", "m"),
    ),
    Case(
        C429,
        refused(429, {"error": {"type": "usage_limit_reached", "message": "m"}}),
        **usage_limit(30, None, "m"),
        state={"default_cooldown_s": 30.0, "plan_type": None},
    ),
    Case(
        CNI,
        refused(429, {"error": {"type": "usage_not_included", "message": "upgrade", "plan_type": "free"}}),
        **move_on(
            UpstreamStatusError(
                "upgrade",
                status=429,
                body={"error": {"type": "usage_not_included", "message": "upgrade", "plan_type": "free"}},
            ),
            mark=MarkStatus(AccountStatus.PLAN_UNSUPPORTED, NO_PLAN),
        ),
    ),
    Case(
        CNI,
        refused(403, {"error": {"code": "usage_not_included"}}),
        **move_on(
            UpstreamStatusError(
                '{"error": {"code": "usage_not_included"}}',  # no message: the body's text
                status=403,
                body={"error": {"code": "usage_not_included"}},
            ),
            mark=MarkStatus(AccountStatus.PLAN_UNSUPPORTED, NO_PLAN),
        ),
    ),
    Case(
        C429_OTHER,
        refused(429, RATE_BODY),
        **move_on(
            UpstreamStatusError(RATE_BODY["error"]["message"], status=429, body=RATE_BODY),
            cool=cool(11.054, "rate_limited", quota=True),
            warning="account alice is rate limited; cooling down for 11 s",
        ),
    ),
    Case(
        C429_OTHER,
        refused(429, b"slow down", {"retry-after": "30"}),
        **move_on(
            UpstreamStatusError("slow down", status=429, body=None),
            cool=cool(30, "rate_limited", quota=True),
            warning="account alice is rate limited; cooling down for 30 s",
        ),
    ),
    Case(
        "403 saying the account is deactivated",
        refused(403, {"error": {"code": "account_deactivated", "message": "x"}}),
        **move_on(
            UpstreamError(f"account alice cannot serve: {SUSPENDED}"),
            mark=MarkStatus(AccountStatus.SUSPENDED, SUSPENDED),
        ),
    ),
    Case(
        "403 Cloudflare challenge page",
        refused(403, CLOUDFLARE_PAGE),
        **move_on(
            UpstreamError(f"account alice cannot serve: {CLOUDFLARE}"),
            cool=cool(60, "cloudflare", quota=False),
            warning=f"account alice: {CLOUDFLARE}; backing off 60 s",
        ),
    ),
    *(
        Case(
            "other 402 or 403",
            refused(status, {"error": {"message": "forbidden"}}),
            **move_on(
                UpstreamError(f"the Codex backend refused account alice (HTTP {status})"),
                cool=cool(300, f"HTTP {status}", quota=False),
            ),
        )
        for status in (402, 403)
    ),
    *(
        Case(
            "5xx, 408, 409",
            refused(status, {"error": {"message": "boom"}}),
            **move_on(UpstreamError(f"the Codex backend answered HTTP {status}: boom")),
        )
        for status in (500, 502, 503, 408, 409)
    ),
    *(
        Case(
            "other 4xx (400 `invalid_request_error` …)",
            refused(status, body),
            Action.RELAY,
            UpstreamStatusError("bad input", status=status, body=body),
        )
        for status, body in [
            (
                400,
                {
                    "error": {
                        "type": "invalid_request_error",
                        "code": "bad",
                        "message": "bad input",
                        "param": "input",
                    }
                },
            ),
            (404, {"detail": "bad input"}),
            (422, {"message": "bad input"}),
        ]
    ),
    Case("connection error, timeout, stream cut before output", TransportFailed(TIMEOUT), **move_on(TIMEOUT)),
    Case(
        "stream ended before any output",
        EndedBeforeOutput(),
        **move_on(UpstreamConnectionError("the Codex backend closed the stream before any output")),
    ),
    Case(
        CFAILED_LIMIT,
        FailedBeforeOutput({"type": "usage_limit_reached", "resets_at": NOW + 900, "plan_type": "pro"}),
        **usage_limit(900, "pro"),
    ),
    Case(CFAILED_LIMIT, FailedBeforeOutput({"code": "insufficient_quota"}), **usage_limit(60, "plus")),
    Case(
        CFAILED_LIMIT,
        FailedBeforeOutput({"code": "rate_limit_exceeded", "message": "Please try again in 2s."}),
        **usage_limit(2, "plus", "Please try again in 2s."),
    ),
    Case(
        CFAILED_NI,
        FailedBeforeOutput({"code": "usage_not_included", "message": "upgrade"}),
        **move_on(
            UpstreamStatusError(
                NO_PLAN, status=429, body={"error": {"code": "usage_not_included", "message": "upgrade"}}
            ),
            mark=MarkStatus(AccountStatus.PLAN_UNSUPPORTED, NO_PLAN),
        ),
    ),
    *(
        Case(
            CFAILED_OVERLOAD,
            FailedBeforeOutput(error),
            **move_on(UpstreamError(f"the Codex backend failed before any output ({code})")),
        )
        for code, error in [
            ("server_is_overloaded", {"code": "server_is_overloaded", "message": "at capacity"}),
            ("slow_down", {"code": "slow_down"}),
            ("server_error", {"type": "server_error"}),
        ]
    ),
    *(
        Case(CFAILED_OTHER, FailedBeforeOutput(error), Action.RELAY, None)
        for error in (
            {"code": "context_length_exceeded", "message": "too long"},
            {"code": "invalid_prompt"},
            {},
        )
    ),
    Case(
        "compaction answered without a JSON object",
        NoJsonObject(),
        **move_on(UpstreamError("the Codex backend answered the compaction with no JSON object")),
    ),
]


@pytest.mark.parametrize(
    "case", DECIDE_CASES, ids=[f"{c.condition} #{i}" for i, c in enumerate(DECIDE_CASES)]
)
def test_decide(case: Case) -> None:
    case.check()


# ---------------------------------------------------------------------------------- no account left


def row(
    account_id: int,
    reason: str | None = None,
    *,
    in_s: float = 300.0,
    last_error: str | None = None,
    enabled: bool = True,
    status: str = "active",
) -> dict[str, Any]:
    """A ``Pool.snapshot`` row of account ``a<id>``, cooling down for ``reason`` (``None``: not cooling)."""
    return {
        "id": account_id,
        "name": f"a{account_id}",
        "enabled": enabled,
        "status": status,
        "cooling_down_until": NOW + in_s if reason else None,
        "cooldown_reason": reason,
        "last_error": last_error,
    }


LAST_LIMIT = UsageLimitError("The usage limit has been reached", resets_at=NOW + 42, plan_type="pro", now=NOW)
BOOM = "the Codex backend answered HTTP 500: boom"
LAST_502 = UpstreamError(BOOM)
ALL_COOLING = Unavailable(300.0, "all 2 accounts are cooling down; the earliest is free in 300 s")
TRIED = Unavailable(0.0, "2 accounts already tried for this request and 1 cooling down")
PLANS = {1: "plus", 2: "pro"}
LIMITS = "no account left, every account in scope at its usage limit"
MIXED = "no account left, some at their usage limit, the others cooling for another reason or failing"
OTHER = "no account left, some cooling, none for a usage limit"


@dataclass(frozen=True)
class Exhausted:
    condition: str
    pick: Unavailable
    rows: list[dict[str, Any]]
    last_error: CodexgwError | None
    expected: CodexgwError
    plan_types: dict[int, str | None] = field(default_factory=lambda: dict(PLANS))
    pinned: int | None = None


def limit(message: str, in_s: float, plan: str | None) -> UsageLimitError:
    return UsageLimitError(message, resets_at=NOW + in_s, plan_type=plan, now=NOW)


def exhausted(message: str, retry_after_s: float) -> PoolExhaustedError:
    return PoolExhaustedError(
        f"No account can serve this request now: {message}", retry_after_s=retry_after_s
    )


EXHAUSTED_CASES = [
    Exhausted(  # the earliest reset, not the last answer's (the first request, as later ones)
        LIMITS,
        ALL_COOLING,
        [row(1, "usage_limit", in_s=7500), row(2, "usage_limit", in_s=300)],
        LAST_LIMIT,
        limit("Every account has reached its usage limit; the earliest (a2) resets in 5 min", 300, "pro"),
    ),
    Exhausted(  # out of scope: disabled, needing login; the first plan known among the scope
        LIMITS,
        ALL_COOLING,
        [row(3, enabled=False), row(4, status="needs_login"), row(7, "usage_limit"), row(2, "usage_limit")],
        LAST_502,
        limit("Every account has reached its usage limit; the earliest (a7) resets in 5 min", 300, "pro"),
    ),
    Exhausted(  # pinned: only the pinned account is in scope, whatever the others do
        LIMITS,
        Unavailable(42.0, "the pinned account a1 is cooling down (usage_limit); it is free in 42 s"),
        [row(1, "usage_limit", in_s=42), row(2, "rate_limited", in_s=5), row(3)],
        None,
        limit("Account a1 has reached its usage limit; it resets in 42 s", 42, "plus"),
        pinned=1,
    ),
    Exhausted(  # the outage: one account at its limit, the others answering 500
        MIXED,
        TRIED,
        [row(1, "usage_limit", in_s=3600), row(2, last_error=BOOM), row(3, last_error=BOOM)],
        LAST_502,
        exhausted(
            f"a1 is at its usage limit (resets in 60 min); a2 failed ({BOOM}); a3 failed ({BOOM}); "
            "retry after 1 s",
            0.0,
        ),
    ),
    Exhausted(  # the last answer was the usage limit, but another account failed first
        MIXED,
        TRIED,
        [row(1, last_error=BOOM), row(2, "usage_limit", in_s=600)],
        LAST_LIMIT,
        exhausted(f"a1 failed ({BOOM}); a2 is at its usage limit (resets in 10 min); retry after 1 s", 0.0),
    ),
    Exhausted(
        MIXED,
        ALL_COOLING,
        [row(1, "usage_limit", in_s=9000), row(2, "rate_limited"), row(3, enabled=False)],
        LAST_502,
        exhausted(
            "a1 is at its usage limit (resets in 2 h 30 min); a2 is cooling down (rate_limited, "
            "free in 5 min) (1 more disabled or needing login); retry after 300 s",
            300.0,
        ),
    ),
    Exhausted(
        OTHER,
        ALL_COOLING,
        [row(1, "rate_limited"), row(2, "HTTP 403", in_s=900)],
        None,
        exhausted(
            "a1 is cooling down (rate_limited, free in 5 min); a2 is cooling down (HTTP 403, free in "
            "15 min); retry after 300 s",
            300.0,
        ),
    ),
    Exhausted(
        "no account left, none cooling (every usable account tried)",
        Unavailable(0.0, "every usable account was already tried for this request (2 accounts)"),
        [row(1, last_error=BOOM), row(2)],
        LAST_502,
        exhausted(f"a1 failed ({BOOM}); a2 failed; retry after 1 s", 0.0),
    ),
    Exhausted(  # pinned and tried: the others are named as unused
        "no account left, none cooling (every usable account tried)",
        Unavailable(0.0, "the pinned account a2 was already tried for this request"),
        [row(1), row(2, last_error=BOOM)],
        LAST_502,
        exhausted(f"a2 failed ({BOOM}) (pinned: 1 other account not used); retry after 1 s", 0.0),
        pinned=2,
    ),
    Exhausted(
        "no account enabled with a valid login, after a failed attempt",
        Unavailable(None, "all accounts are disabled or need login"),
        [row(1, status="needs_login"), row(2, enabled=False)],
        LAST_502,
        LAST_502,
    ),
    Exhausted(
        "no account enabled with a valid login, nothing tried",
        Unavailable(None, "all accounts are disabled or need login"),
        [row(1, enabled=False)],
        None,
        PoolExhaustedError(
            "all accounts are disabled or need login; enable one with `codexgw accounts enable NAME` or "
            "log in again with `codexgw login pkce`"
        ),
    ),
    Exhausted(
        "no account enabled with a valid login, nothing tried",
        Unavailable(None, "no accounts configured"),
        [],
        None,
        PoolExhaustedError(
            "no accounts configured; add one with `codexgw login pkce` or `codexgw accounts import PATH`"
        ),
    ),
]


@pytest.mark.parametrize(
    "case", EXHAUSTED_CASES, ids=[f"{c.condition} #{i}" for i, c in enumerate(EXHAUSTED_CASES)]
)
def test_exhausted_answer(case: Exhausted) -> None:
    answer = exhausted_answer(
        case.pick, case.rows, case.last_error, now=NOW, plan_types=case.plan_types, pinned=case.pinned
    )
    assert err(answer) == err(case.expected)
    if case.expected is case.last_error:
        assert answer is case.last_error


@pytest.mark.parametrize("case", EXHAUSTED_CASES, ids=[f"#{i}" for i in range(len(EXHAUSTED_CASES))])
def test_exhausted_resets_at_retry_after_and_message_agree(case: Exhausted) -> None:
    """``Retry-After`` is whole seconds (at least 1, none without a wait); a 429's ``resets_at`` is
    ``Retry-After`` from now, and the message says the same wait (in words) as the header."""
    answer = exhausted_answer(
        case.pick, case.rows, case.last_error, now=NOW, plan_types=case.plan_types, pinned=case.pinned
    )
    header = answer.headers.get("Retry-After")
    if isinstance(answer, UsageLimitError) and answer is not case.last_error:
        assert answer.resets_at is not None
        body = answer.to_body()["error"]
        assert body["resets_at"] == NOW + int(header)
        assert answer.message.endswith(f"resets in {in_words(answer.resets_at - NOW)}")
    elif isinstance(answer, PoolExhaustedError) and case.pick.retry_after_s is not None:
        assert header == str(max(1, math.ceil(case.pick.retry_after_s)))
        assert answer.message.endswith(f"retry after {header} s")
    elif isinstance(answer, PoolExhaustedError):
        assert header is None


def test_no_usage_limit_answer_unless_every_account_in_scope_is_at_one() -> None:
    """Whatever the last answer was, a 429 only when each account in scope cools for a usage limit."""
    for case in EXHAUSTED_CASES:
        answer = exhausted_answer(
            case.pick, case.rows, case.last_error, now=NOW, plan_types=case.plan_types, pinned=case.pinned
        )
        scope = in_scope(case.rows, case.pinned)
        all_at_limit = bool(scope) and all(r["cooldown_reason"] == "usage_limit" for r in scope)
        assert (answer.status == 429) == all_at_limit, case


def test_in_words() -> None:
    assert [in_words(s) for s in (0.2, 42, 119.5, 120, 7199, 7200, 7500, 172800, 183600)] == [
        "1 s", "42 s", "2 min", "2 min", "2 h 00 min", "2 h 00 min", "2 h 05 min", "2 d 00 h", "2 d 03 h"
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("rows", "mix"),
    [
        ([], CoolingMix.NONE),
        ([row(1)], CoolingMix.NONE),
        ([row(1, "usage_limit")], CoolingMix.USAGE_LIMITS),
        ([row(1, "usage_limit"), row(2)], CoolingMix.MIXED),  # a2 failed: not at a limit
        ([row(1, "usage_limit"), row(2, "cloudflare")], CoolingMix.MIXED),
        ([row(1, "rate_limited")], CoolingMix.OTHER),
    ],
)
def test_cooling_mix(rows: list[dict[str, Any]], mix: CoolingMix) -> None:
    assert cooling_mix(rows) == mix
    assert mix in EXHAUSTED_ANSWER


# ---------------------------------------------------------------------------------- the README table


def test_every_readme_row_has_a_case_and_every_case_a_row() -> None:
    rows = readme_rows()
    covered = {c.condition for c in DECIDE_CASES} | {c.condition for c in EXHAUSTED_CASES}
    assert sorted(rows) == sorted(covered)


@pytest.mark.parametrize(
    "case", DECIDE_CASES, ids=[f"{c.condition} #{i}" for i, c in enumerate(DECIDE_CASES)]
)
def test_readme_row_says_what_the_decision_does(case: Case) -> None:
    does = readme_rows()[case.condition]
    verbs = {Action.MOVE_ON: "moves on", Action.RELAY: "relays", Action.RETRY: "retries"}
    assert verbs[case.action] in does
    assert [v for a, v in verbs.items() if a is not case.action and v in does] == []
    assert ("cools" in does) == (case.cool is not None)
    assert ("marks the account" in does) == (case.mark is not None)
    if case.mark is not None:
        assert f"`{case.mark.status}`" in does
    if case.cool is not None and not case.cool.quota:
        assert re.search(rf"\b{case.cool.until - NOW:.0f} s\b", does) and "do not end it" in does
