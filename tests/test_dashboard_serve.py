"""The dashboard as ``serve`` mounts it (no browser): ``/`` redirects, pages and static files come
with their CSP, ``--api-key`` guards ``/v1`` but not the pages, ``--no-dashboard`` removes them."""

from __future__ import annotations

from importlib import resources

import httpx

from codexgw.dashboard.pages import CSP, PAGES, load_static
from tests.conftest import Env


async def test_root_redirects_and_every_page_is_served_with_the_csp(env: Env) -> None:
    await env.start()
    async with httpx.AsyncClient(base_url=env.url) as client:
        root = await client.get("/")
        assert (root.status_code, root.headers["location"]) == (302, "/dashboard")
        for page in PAGES:
            resp = await client.get(f"/dashboard/{page.slug}")
            assert resp.status_code == 200, page
            assert resp.headers["content-type"] == "text/html; charset=utf-8"
            assert resp.headers["content-security-policy"] == CSP
            assert resp.headers["cache-control"] == "no-store"
            assert f"<title>{page.title} · codexgw</title>" in resp.text
            assert "<script>" not in resp.text and " style=" not in resp.text  # nothing inline
        assert (await client.get("/dashboard/nope")).status_code == 404


async def test_static_files_are_the_package_files_with_etags(env: Env) -> None:
    await env.start()
    vendored = resources.files("codexgw.dashboard") / "static/vendor/uplot/uPlot.iife.min.js"
    async with httpx.AsyncClient(base_url=env.url) as client:
        js = await client.get("/dashboard/static/vendor/uplot/uPlot.iife.min.js")
        assert js.status_code == 200
        assert js.content == vendored.read_bytes()
        assert js.headers["content-type"] == "text/javascript; charset=utf-8"
        again = await client.get(
            "/dashboard/static/vendor/uplot/uPlot.iife.min.js", headers={"if-none-match": js.headers["etag"]}
        )
        assert again.status_code == 304 and again.content == b""
        assert (await client.get("/dashboard/static/../pages.py")).status_code == 404
        assert (await client.get("/dashboard/static/nope.js")).status_code == 404


def test_the_vendored_library_keeps_its_licence_and_version() -> None:
    files = load_static()
    assert files["vendor/uplot/uPlot.iife.min.js"].body.startswith(
        b"/*! https://github.com/leeoniya/uPlot (v1.6.32) */"
    )
    assert b"MIT License" in files["vendor/uplot/LICENSE"].body
    assert b"1.6.32" in files["vendor/README.md"].body
    assert files["app.css"].content_type == "text/css; charset=utf-8"


async def test_api_key_guards_v1_but_not_the_dashboard(env: Env) -> None:
    env.add_account("alice")
    await env.start(api_key="gw-secret")
    async with httpx.AsyncClient(base_url=env.url) as client:
        assert (await client.get("/v1/models")).status_code == 401
        assert (await client.get("/dashboard/login")).status_code == 200
        assert (await client.get("/dashboard/static/app.css")).status_code == 200
        assert (await client.get("/")).status_code == 302


async def test_no_dashboard_serves_no_pages(env: Env) -> None:
    env.add_account("alice")
    await env.start(dashboard=False)
    async with httpx.AsyncClient(base_url=env.url) as client:
        assert (await client.get("/")).status_code == 404
        assert (await client.get("/dashboard")).status_code == 404
        assert (await client.get("/dashboard/static/app.css")).status_code == 404
        assert (await client.get("/health")).status_code == 200


def task_names() -> list[str]:
    """The names of every task now running under trio's root task, sorted."""
    import trio

    names: list[str] = []
    todo = [trio.lowlevel.current_root_task()]
    while todo:
        task = todo.pop()
        names.append(task.name)
        todo += [child for nursery in task.child_nurseries for child in nursery.child_tasks]
    return sorted(names)


async def test_the_dashboard_runs_no_task_of_its_own(env: Env) -> None:
    """No page open, nothing running for the dashboard: the same tasks as ``--no-dashboard``, before
    and after pages and static files were served (an idle server spends no CPU on it)."""
    import trio

    before = task_names()
    await env.start(dashboard=False)
    without = task_names()
    env.shutdown.set()
    with trio.fail_after(10):
        while task_names() != before:  # the first server has stopped
            await trio.sleep(0.02)
    await env.start()
    with_dashboard = task_names()
    async with httpx.AsyncClient(base_url=env.url) as client:
        for path in ("/dashboard", "/dashboard/keys", "/dashboard/static/js/pool.js"):
            assert (await client.get(path)).status_code == 200
    await trio.sleep(0.1)
    after = task_names()
    assert with_dashboard == without
    assert after == without
