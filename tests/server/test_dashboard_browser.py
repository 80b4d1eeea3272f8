"""The dashboard in a real headless Chromium (Debian's, driven by Playwright): follow a request
from the log to its detail page, filter with the form, and keep a screenshot of each page."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, sync_playwright

from tether.prompts.loader import parse_spec

from .conftest import ADMIN_TOKEN, LiveGateway

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PROMPTS = Path(__file__).resolve().parents[2] / "prompts" / "feedback-sentiment"
TARGET = "Please summarise: the <b>blue</b> kettle leaks & hisses"


@pytest.fixture
def browser() -> Iterator[Browser]:
    if not CHROMIUM.is_file():
        pytest.fail(
            f"Chromium not found at {CHROMIUM}: run `make setup` (it installs Debian's chromium)"
        )
    with sync_playwright() as playwright:
        found = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield found
        finally:
            found.close()


def seed(live: LiveGateway) -> tuple[str, openai.types.CompletionUsage]:
    """A few calls and two prompt versions; the id and usage of the call the test follows."""
    client = openai.OpenAI(base_url=live.v1, api_key=live.key, max_retries=0)
    for text in ("Where is my parcel?", "Can I change my address?"):
        client.chat.completions.create(model="fake", messages=[{"role": "user", "content": text}])
    target = client.chat.completions.create(
        model="fake",
        messages=[
            {"role": "system", "content": "Summarise the customer's message."},
            {"role": "user", "content": TARGET},
        ],
    )
    with pytest.raises(openai.UnprocessableEntityError):
        client.chat.completions.create(
            model="fake",
            messages=[{"role": "user", "content": "Return JSON"}],
            response_format={
                "type": "json_schema",
                "json_schema": {"name": "answer", "schema": {"type": "object"}},
            },
        )
    client.chat.completions.create(model="fake", messages=[{"role": "user", "content": "Thanks!"}])
    client.close()
    registry = live.gateway.client.registry
    for version in ("1.0.0", "1.1.0"):
        source = (PROMPTS / f"{version}.yaml").read_text("utf-8")
        spec = parse_spec(source, source_name=f"{version}.yaml").spec
        registry.push(spec, source=source, author="ada", message=f"release {version}")
    registry.set_label("feedback-sentiment", "production", "1.0.0", actor="ada", reason="launch")
    registry.set_label("feedback-sentiment", "production", "1.1.0", actor="bob", reason="themes")
    assert live.gateway.log.flush()
    assert target.usage is not None
    return target.id.removeprefix("chatcmpl-"), target.usage


def open_page(browser: Browser, problems: list[str]) -> Page:
    page = browser.new_page(viewport={"width": 1360, "height": 900})

    def console(message: ConsoleMessage) -> None:
        if message.type in ("error", "warning"):  # a CSP violation would be reported here
            problems.append(message.text)

    page.on("console", console)
    page.on("pageerror", lambda error: problems.append(str(error)))
    return page


def test_follow_a_request_to_its_detail(
    live: LiveGateway, browser: Browser, tmp_path: Path
) -> None:
    request_id, usage = seed(live)
    problems: list[str] = []
    page = open_page(browser, problems)

    # sign in through the form: a session cookie, an Origin-checked post
    page.goto(f"{live.url}/dashboard/login?next=/dashboard/requests")
    page.fill("input[name=token]", ADMIN_TOKEN)
    page.click("form button[type=submit]")
    page.wait_for_url("**/dashboard/requests")
    assert page.title() == "Requests · tether"
    assert page.locator("table.log tbody tr").count() == 5
    # the stylesheet loaded under the page's CSP
    header = page.locator("header.top").evaluate("e => getComputedStyle(e).backgroundColor")
    assert header == "rgb(29, 35, 48)"
    page.screenshot(path=tmp_path / "requests.png", full_page=True)

    page.click(f'a[href="/dashboard/requests/{request_id}"]')
    page.wait_for_url(f"**/dashboard/requests/{request_id}")
    assert page.locator("h1").inner_text() == request_id
    messages = page.locator(".message")
    assert messages.count() == 2
    assert messages.nth(0).locator(".role").inner_text().lower() == "system"
    assert messages.nth(1).locator("pre").inner_text() == TARGET  # shown as text
    assert page.locator("pre b").count() == 0  # not as markup
    assert page.locator("pre.output").inner_text() == f"echo: {TARGET}"
    facts = page.locator("dl.facts").inner_text()
    assert f"{usage.prompt_tokens} in / {usage.completion_tokens} out" in facts
    assert "chat.completions" in facts
    assert live.key not in page.content()
    page.screenshot(path=tmp_path / "detail.png", full_page=True)

    page.goto(f"{live.url}/dashboard/requests")
    page.fill("input[name=q]", "kettle")
    page.select_option("select[name=status]", "ok")
    page.click("form.filters button[type=submit]")
    page.wait_for_url("**/dashboard/requests?*q=kettle*")
    assert page.locator("table.log tbody tr").count() == 1
    assert page.locator(f'a[href="/dashboard/requests/{request_id}"]').count() == 1

    page.goto(f"{live.url}/dashboard")
    assert page.locator("figure.chart svg").count() == 3
    assert page.locator("figure.chart svg rect.bar").count() == 1  # today's cost
    page.screenshot(path=tmp_path / "overview.png", full_page=True)

    page.goto(f"{live.url}/dashboard/prompts")
    assert page.locator("section.prompt h2").inner_text() == "feedback-sentiment"
    assert page.locator("ol.moves li").count() == 2
    page.screenshot(path=tmp_path / "prompts.png", full_page=True)

    assert problems == []
    page.click("form.signout button")
    page.wait_for_url("**/dashboard/login")
    assert page.locator("input[name=token]").count() == 1
    assert "tether_session" not in {c["name"] for c in page.context.cookies()}
    for name in ("requests", "detail", "overview", "prompts"):
        assert (tmp_path / f"{name}.png").stat().st_size > 10_000
