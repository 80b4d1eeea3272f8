"""The dashboard's review queue: admins only; each queued request with its prompt, input,
output, evaluations and feedback, failures first; the verdict form records a review and takes
the request out of the queue, behind the dashboard's Origin check; data shown as text."""

from __future__ import annotations

import re
from pathlib import Path

from starlette.testclient import TestClient

from tests.store.test_evaluations_store import NOW, log_request
from tether.store.evaluations import EvaluationRow, add_evaluations
from tether.store.feedback import add_feedback
from tether.store.reviews import enqueue, queue_size, reviewed

from .conftest import ADMIN_TOKEN
from .test_dashboard import ALLOWED_TAGS, TagAudit, app_for

ADMIN = {"authorization": f"Bearer {ADMIN_TOKEN}"}
SAME = {"origin": "http://localhost"}
HOSTILE = "<script>alert('x')</script>"


def queued_ids(html: str) -> list[str]:
    return re.findall(r'<a class="id" href="/dashboard/requests/[^"]+">([^<]+)</a>', html)


def seed(client: TestClient) -> None:
    engine = client.app.state.gateway.engine  # type: ignore[attr-defined]
    log_request(engine, "req_sampled", user="is there a team plan?")
    log_request(engine, "req_failed", user=f"crash {HOSTILE}", response=f'{{"queue": "{HOSTILE}"}}')
    failed = EvaluationRow("req_failed", "in queue", None, False, f"not in {HOSTILE}", NOW)
    add_evaluations(engine, [failed])
    add_feedback(engine, "req_failed", 0.0, "wrong", f"comment {HOSTILE}", None)
    enqueue(engine, [("req_sampled", "sampled"), ("req_failed", "failed: in queue")])


def assert_escaped(html: str) -> None:
    assert "<script" not in html.lower()
    audit = TagAudit()
    audit.feed(html)
    assert audit.tags <= ALLOWED_TAGS | {"textarea"}, audit.tags - ALLOWED_TAGS
    assert audit.handlers == []


def test_the_queue_page(tmp_path: Path) -> None:
    with TestClient(app_for(tmp_path), base_url="http://localhost") as client:
        seed(client)
        assert client.get("/dashboard/reviews").status_code == 403  # not signed in
        page = client.get("/dashboard/reviews", headers=ADMIN)
        assert page.status_code == 200
        html = page.text
        assert_escaped(html)
        assert queued_ids(html) == ["req_failed", "req_sampled"]  # failures first
        assert "2 waiting" in html
        assert "crash &lt;script&gt;" in html  # the input
        assert "&#34;queue&#34;: &#34;&lt;script&gt;" in html  # the output
        assert "not in &lt;script&gt;" in html  # the evaluation
        assert "comment &lt;script&gt;" in html  # the feedback
        assert 'action="/dashboard/reviews/req_failed"' in html
        assert 'aria-current="page">Reviews' in html
        assert queued_ids(client.get("/dashboard/reviews", params={"prompt": "other"},
                                     headers=ADMIN).text) == []  # fmt: skip


def test_a_verdict_takes_the_request_out_of_the_queue(tmp_path: Path) -> None:
    with TestClient(app_for(tmp_path), base_url="http://localhost") as client:
        seed(client)
        engine = client.app.state.gateway.engine  # type: ignore[attr-defined]
        form = {"verdict": "needs-fix", "corrected_output": '{"queue": "tech"}',
                "note": "crash", "reviewer": "ana"}  # fmt: skip
        done = client.post("/dashboard/reviews/req_failed", data=form, headers=ADMIN | SAME,
                           follow_redirects=False)  # fmt: skip
        assert done.status_code == 303
        assert done.headers["location"] == "/dashboard/reviews"
        assert queued_ids(client.get("/dashboard/reviews", headers=ADMIN).text) == ["req_sampled"]
        [review] = [r.review for r in reviewed(engine)]
        assert (review.request_id, review.verdict, review.reviewer) == ("req_failed", "needs-fix",
                                                                        "ana")  # fmt: skip
        assert (review.corrected_output, review.note) == ('{"queue": "tech"}', "crash")

        good = client.post("/dashboard/reviews/req_sampled", data={"verdict": "good",
                           "corrected_output": "ignored", "prompt": "ticket"},
                           headers=ADMIN | SAME, follow_redirects=False)  # fmt: skip
        assert good.headers["location"] == "/dashboard/reviews?prompt=ticket"
        assert queue_size(engine) == 0
        latest = {r.request.id: r.review for r in reviewed(engine)}
        assert latest["req_sampled"].corrected_output is None  # only needs-fix keeps one
        assert latest["req_sampled"].reviewer == "dashboard"


def test_bad_forms_are_refused(tmp_path: Path) -> None:
    with TestClient(app_for(tmp_path), base_url="http://localhost") as client:
        seed(client)
        engine = client.app.state.gateway.engine  # type: ignore[attr-defined]
        url = "/dashboard/reviews/req_failed"
        assert client.post(url, data={"verdict": "good"}, headers=SAME).status_code == 403
        evil = client.post(url, data={"verdict": "good"},
                           headers=ADMIN | {"origin": "http://evil.example"})  # fmt: skip
        assert evil.status_code == 403
        meh = client.post(url, data={"verdict": "meh"}, headers=ADMIN | SAME)
        assert meh.status_code == 400
        assert "Choose a verdict" in meh.text
        unfixed = client.post(url, data={"verdict": "needs-fix"}, headers=ADMIN | SAME)
        assert unfixed.status_code == 400
        assert "corrected output" in unfixed.text
        gone = client.post("/dashboard/reviews/req_nope", data={"verdict": "good"},
                           headers=ADMIN | SAME)  # fmt: skip
        assert gone.status_code == 404
        big = client.post(url, content=b"verdict=good&note=" + b"x" * 300_000,
                          headers=ADMIN | SAME)  # fmt: skip
        assert big.status_code == 413
        assert queue_size(engine) == 2
        assert reviewed(engine) == []


def test_a_signed_in_session_needs_the_same_origin(tmp_path: Path) -> None:
    with TestClient(app_for(tmp_path), base_url="http://localhost") as client:
        seed(client)
        signed = client.post("/dashboard/login", data={"token": ADMIN_TOKEN,
                             "next": "/dashboard/reviews"}, follow_redirects=False)  # fmt: skip
        assert signed.status_code == 303
        assert client.get("/dashboard/reviews").status_code == 200
        url = "/dashboard/reviews/req_failed"
        assert client.post(url, data={"verdict": "bad"}).status_code == 403  # no Origin
        done = client.post(url, data={"verdict": "bad"}, headers=SAME, follow_redirects=False)
        assert done.status_code == 303
