"""`make test-ui`: connection form, Test button, a DAG run and human reviews, in Airflow's real UI (headless Chromium).

Starts `airflow standalone` on 127.0.0.1 with a fresh AIRFLOW_HOME (.airflow-ui/) and the emulator as the API,
then, in Debian's Chromium driven by Playwright: logs in, checks the "AI/ML API" connection form (fields,
labels, hidden ones, prefilled extras), saves a good-key and a bad-key connection, presses Test on both, unpauses
and triggers example_aiml_summarize from the UI, waits for it, and reads content, reasoning and usage in the XCom
view. Then the human-in-the-loop review of example_aiml_release_note_approval: three runs triggered from the
UI, and in each run's "Required Action" form one note approved as written, one edited and approved, one
rejected with a comment; the REST API then shows what each response did downstream (XCom, skipped tasks) and the
emulator that the model was asked once per run. Screenshots go to docs/img/. Every process it starts is stopped
at the end.

Known Airflow bug: up to Airflow 3.3.2 the Test button answers 400 "The host or port to test differs from the
stored connection" for every connection without a port: the UI sends `port: 0` (`Number(null)`) and the API
compares it with the stored NULL (apache/airflow#73298 fixes the API's comparison; no release has it yet).
When the installed Airflow still has that comparison, the browser here rewrites `port: 0` to `null` in the Test
request, which is exactly what the fix makes the API do; nothing else in the request is touched, so the message
shown is the provider's own answer for the saved connection. With a fixed Airflow the request goes out as is.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

REPO = Path(__file__).resolve().parents[1]
HOME = REPO / ".airflow-ui"
SHOTS = REPO / "docs" / "img"
PORT = 28080
BASE = f"http://127.0.0.1:{PORT}"
GOOD_KEY, BAD_KEY = "sk-ui-good-key-1234", "sk-ui-wrong-key-5678"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def main() -> int:
    from airflow_provider_aiml.testing import AimlApiEmulator

    shutil.rmtree(HOME, ignore_errors=True)
    HOME.mkdir()
    SHOTS.mkdir(parents=True, exist_ok=True)
    failures: list[str] = []
    with AimlApiEmulator(api_keys={GOOD_KEY}, latency=0.3) as emulator:
        airflow = start_airflow()
        try:
            wait_until_ready()
            drive_ui(emulator, failures)
        finally:
            stop_airflow(airflow)
    for failure in failures:
        print(f"FAILED: {failure}")
    print(
        "UI test passed: form, Test button (good and bad key), DAG run, XCom view and approve/edit/reject reviews"
        if not failures
        else f"UI test failed: {len(failures)} problem(s)"
    )
    return 1 if failures else 0


def start_airflow() -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
        "AIRFLOW_HOME": str(HOME),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "example_dags"),
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
        "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(PORT),
        "AIRFLOW__API__BASE_URL": BASE,
    }
    # A background job inherits SIGINT ignored; restore it so SIGINT shuts standalone down with its children.
    launcher = (
        "import os, signal; signal.signal(signal.SIGINT, signal.SIG_DFL); "
        "os.execvp('airflow', ['airflow', 'standalone'])"
    )
    log = (HOME / "standalone.log").open("wb")
    return subprocess.Popen([sys.executable, "-c", launcher], env=env, stdout=log, stderr=subprocess.STDOUT)


def wait_until_ready(timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{BASE}/api/v2/monitor/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(1)
    raise RuntimeError(f"Airflow did not come up within {timeout:.0f}s; see {HOME / 'standalone.log'}")


def stop_airflow(process: subprocess.Popen[bytes]) -> None:
    """SIGINT standalone (it stops its components), then make sure none of them is left behind."""
    import psutil

    children = psutil.Process(process.pid).children(recursive=True)
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
    _, alive = psutil.wait_procs(children, timeout=20)
    for child in alive:
        child.kill()


def admin_password() -> str:
    return str(json.loads((HOME / "simple_auth_manager_passwords.json.generated").read_text())["admin"])


def airflow_rejects_port_zero() -> bool:
    """Whether the installed Airflow still treats the UI's `port: 0` as a different port (apache/airflow#73298)."""
    from airflow.api_fastapi.core_api.routes.public import connections

    same_endpoint = getattr(connections, "_same_endpoint", None)
    return same_endpoint is not None and not same_endpoint(0, None)


def send_portless_test_as_fixed_airflow_would(route: Any) -> None:
    """Turn the UI's `port: 0` into `null` in a Test request, the comparison apache/airflow#73298 makes."""
    body = route.request.post_data_json
    if isinstance(body, dict) and body.get("port") == 0:
        body["port"] = None
        route.continue_(post_data=json.dumps(body))
    else:
        route.continue_()


def drive_ui(emulator: Any, failures: list[str]) -> None:
    from playwright.sync_api import sync_playwright

    api_base_url = emulator.base_url
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=shutil.which("chromium"), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.set_default_timeout(30_000)  # every wait for an element is bounded
        if airflow_rejects_port_zero():
            print("Airflow without apache/airflow#73298: Test requests are sent with port null instead of 0")
            page.route("**/api/v2/connections/test", send_portless_test_as_fixed_airflow_would)
        page.goto(BASE + "/")
        page.get_by_label("Username").fill("admin")
        page.get_by_label("Password").fill(admin_password())
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(BASE + "/")
        add_connection(page, "aiml_default", api_base_url, GOOD_KEY, failures, screenshots=True)
        add_connection(page, "aiml_bad_key", api_base_url, BAD_KEY, failures, screenshots=False)
        press_test(page, "aiml_default", "API key accepted by", failures)
        press_test(page, "aiml_bad_key", "The API key was rejected", failures)
        run_dag_and_read_xcom(page, failures)
        review_release_notes(page, emulator, failures)
        browser.close()


def add_connection(page: Any, conn_id: str, base_url: str, key: str, failures: list[str], *, screenshots: bool) -> None:
    page.goto(BASE + "/connections")
    page.get_by_role("button", name="Add Connection").click()
    dialog = page.get_by_role("dialog")
    dialog.locator("input[name=connection_id]").fill(conn_id)
    combo = dialog.get_by_role("combobox").first
    combo.fill("AI/ML")
    combo.press("Enter")
    for hidden in ("Port", "Login", "Schema"):
        if dialog.get_by_text(hidden, exact=True).count():
            failures.append(f"the form shows the unused field {hidden!r}")
    for label in ("Base URL", "API Key"):
        if not dialog.get_by_text(label, exact=True).count():
            failures.append(f"the form has no {label!r} field")
    if dialog.locator("input[name=host]").get_attribute("placeholder") != "https://api.aimlapi.com/v1":
        failures.append("the Base URL field does not show the default URL as its placeholder")
    if dialog.locator("input[name=password]").get_attribute("type") != "password":
        failures.append("the API Key field is not masked")
    dialog.locator("input[name=host]").fill(base_url)
    dialog.locator("input[name=password]").fill(key)
    if screenshots:
        page.screenshot(path=str(SHOTS / "connection-form.png"))
    dialog.get_by_text("Extra Fields", exact=True).click()
    page.wait_for_timeout(300)
    if dialog.locator("input[name=element_model]").input_value() != "alibaba/qwen3-vl-32b-thinking":
        failures.append("the Default model field is not prefilled")
    for label in ("Default model", "Timeout (seconds)", "Max retries"):
        if not dialog.get_by_text(label, exact=True).count():
            failures.append(f"the form has no {label!r} extra field")
    if screenshots:
        page.screenshot(path=str(SHOTS / "connection-extra-fields.png"))
    dialog.get_by_role("button", name="Save").click()
    page.wait_for_timeout(1000)


def press_test(page: Any, conn_id: str, expected: str, failures: list[str]) -> None:
    """Press the row's Test button and check the answer, both in the API response and in the toast shown."""
    page.goto(BASE + "/connections")
    page.wait_for_timeout(800)
    row = page.get_by_role("row").filter(has_text=conn_id)
    with page.expect_response(lambda response: "/connections/test" in response.url) as answer:
        row.get_by_role("button", name="Test Connection").click(force=True)
    response = answer.value
    body = response.json()
    if response.status != 200 or expected not in str(body.get("message")):
        failures.append(f"Test button for {conn_id}: HTTP {response.status} {body}, expected {expected!r}")
        return
    try:
        page.get_by_text(expected, exact=False).first.wait_for(state="visible", timeout=5000)
    except Exception:
        failures.append(f"Test button for {conn_id}: the UI did not show {expected!r}")
    page.wait_for_timeout(1000)  # the toast slides in
    page.screenshot(path=str(SHOTS / f"connection-test-{conn_id}.png"))
    if GOOD_KEY in page.inner_text("body") or BAD_KEY in page.inner_text("body"):
        failures.append(f"Test button for {conn_id}: the page shows the API key")


def api_call(method: str, path: str, **kwargs: Any) -> Any:
    """Call Airflow's API; a busy API server on a 2-core CI machine may be slow, so wait and try again."""
    deadline = time.monotonic() + 120
    while True:
        try:
            response = httpx.request(method, f"{BASE}{path}", timeout=30, **kwargs)
            response.raise_for_status()
            return response.json()
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(2)


def api_headers() -> dict[str, str]:
    token = api_call("POST", "/auth/token", json={"username": "admin", "password": admin_password()})
    return {"Authorization": f"Bearer {token['access_token']}"}


def run_dag_and_read_xcom(page: Any, failures: list[str]) -> None:
    dag = "example_aiml_summarize"
    page.goto(f"{BASE}/dags/{dag}")
    page.wait_for_timeout(1500)
    page.get_by_role("checkbox").first.click(force=True)  # unpause
    page.get_by_role("button", name="Trigger Dag").click()
    page.get_by_role("dialog").get_by_role("button", name="Trigger").last.click()
    headers = api_headers()
    deadline = time.monotonic() + 180
    runs: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        runs = api_call("GET", f"/api/v2/dags/{dag}/dagRuns", headers=headers)["dag_runs"]
        if runs and runs[-1]["state"] in ("success", "failed"):
            break
        time.sleep(2)
    if not runs or runs[-1]["state"] != "success":
        failures.append(f"the DAG run triggered from the UI did not succeed: {runs[-1:] or 'no run'}")
        return
    run_id = runs[-1]["dag_run_id"]
    page.goto(f"{BASE}/dags/{dag}/runs/{run_id}/tasks/summarize/xcom")
    page.get_by_role("button", name="Expand all extra JSON").click()
    page.get_by_text("total_tokens").first.wait_for(state="visible", timeout=10000)
    page.set_viewport_size({"width": 1280, "height": 1300})  # the XCom list scrolls inside the page
    page.wait_for_timeout(500)
    page.screenshot(path=str(SHOTS / "xcom-view.png"))
    text = page.inner_text("body")
    # content, reasoning and usage rows with what each holds: the summary, the model's thinking, token counts.
    for shown in ("content", "Summary:", "reasoning", "The user wants", "usage", "prompt_tokens", "total_tokens"):
        if shown not in text:
            failures.append(f"the XCom view of summarize does not show {shown!r}")


# --- human-in-the-loop review ----------------------------------------------------------------------------------

APPROVAL_DAG = "example_aiml_release_note_approval"
EDITED_NOTE = (
    "Release 2.4.0: rate-limited calls are retried after the server's Retry-After, the model's reasoning is "
    "streamed into the task log, and batch runs can be given a cost budget. (Edited in review.)"
)
EDIT_COMMENT = "Shorter, and in our house style."
REJECT_COMMENT = "Wrong version: this is the 2.4.1 changelog."


def review_release_notes(page: Any, emulator: Any, failures: list[str]) -> None:
    """Three runs of the approval example triggered in the UI; one approved as is, one edited, one rejected."""
    headers = api_headers()
    before = len(model_calls(emulator))
    # Wide enough for the grid beside the form to show all three runs: at 1280 px it clips the newest one.
    page.set_viewport_size({"width": 1700, "height": 1000})
    run_ids = [trigger_from_ui(page) for _ in range(3)]
    print(f"Triggered {APPROVAL_DAG} three times from the UI: {', '.join(run_ids)}")
    for run_id in run_ids:
        state = wait_for_task(headers, run_id, "review", {"awaiting_input", "deferred"})
        if state not in ("awaiting_input", "deferred"):
            failures.append(f"run {run_id}: the review task is {state!r} instead of waiting for a response")
            return
    answers = [xcom_value(headers, run_id, "write_note", "return_value") for run_id in run_ids]

    page.goto(f"{BASE}/required_actions")  # unfiltered: ?response_received=false shows raw i18n keys in 3.3.2
    pending = page.get_by_role("row").filter(has_text="Release note for 2.4.0")
    try:
        page.wait_for_function(
            "n => [...document.querySelectorAll('tr')].filter(r => r.innerText.includes('Release note for')).length"
            " >= n",
            arg=3,
            timeout=30_000,
        )
    except Exception:
        failures.append(f"the Required Actions view lists {pending.count()} pending reviews instead of 3")
    page.screenshot(path=str(SHOTS / "ui-approval-list.png"))

    approve, edit, reject = run_ids
    respond(page, approve, answers[0], "Approve", failures, screenshot="ui-approval-form.png")
    respond(
        page,
        edit,
        answers[1],
        "Approve",
        failures,
        note=EDITED_NOTE,
        comment=EDIT_COMMENT,
        screenshot="ui-approval-edited.png",
    )
    respond(page, reject, answers[2], "Reject", failures, comment=REJECT_COMMENT)

    for run_id in run_ids:
        state = wait_for_run(headers, run_id)
        if state != "success":
            failures.append(f"run {run_id} of {APPROVAL_DAG} ended {state!r}, expected success")
    # The rejected run in the UI once it has finished: publish skipped in its task list, and the review form
    # disabled with the reviewer's comment (the grid beside it shows publish skipped in the third run).
    page.goto(f"{BASE}/dags/{APPROVAL_DAG}/runs/{reject}")
    publish_row = page.get_by_role("row").filter(has_text="publish")
    try:
        publish_row.get_by_text("Skipped", exact=True).wait_for(state="visible")
    except Exception:
        failures.append(f"run {reject}: the run's task list does not show publish as Skipped after the rejection")
    page.goto(f"{BASE}/dags/{APPROVAL_DAG}/runs/{reject}/tasks/review/required_actions")
    page.get_by_text("Response received at").first.wait_for(state="visible")
    page.screenshot(path=str(SHOTS / "ui-approval-rejected.png"))
    page.goto(f"{BASE}/required_actions")
    for state in ("Approval Received", "Rejection Received"):
        page.get_by_text(state).first.wait_for(state="visible")
    page.screenshot(path=str(SHOTS / "ui-approval-reviewed.png"))
    check_review_results(headers, run_ids, answers, failures)
    calls = model_calls(emulator)[before:]
    if len(calls) != 3:
        failures.append(f"the model was asked {len(calls)} times for three reviewed notes; a review must not ask again")


def model_calls(emulator: Any) -> list[Any]:
    return [r for r in emulator.chat_requests if (r.client_request_id or "").startswith(f"{APPROVAL_DAG}:")]


def trigger_from_ui(page: Any) -> str:
    """Press Trigger on the DAG page and confirm in the dialog; the id of the run the UI created.

    The dialog's "Unpause on trigger" box (ticked by default) unpauses the DAG with the first run; the UI then
    opens the new run's page, so each trigger starts from the DAG page again.
    """
    page.goto(f"{BASE}/dags/{APPROVAL_DAG}")
    page.get_by_role("button", name="Trigger Dag").click()
    submit = page.get_by_role("dialog").locator("[data-testid=trigger-dag-submit]")
    submit.wait_for(state="visible")
    with page.expect_response(
        lambda r: r.request.method == "POST" and r.url.endswith(f"/dags/{APPROVAL_DAG}/dagRuns"), timeout=30_000
    ) as created:
        submit.click()
    response = created.value
    if response.status != 200:
        raise RuntimeError(f"triggering {APPROVAL_DAG} from the UI answered HTTP {response.status}: {response.text()}")
    run_id = str(response.json()["dag_run_id"])
    page.wait_for_url(f"**/dags/{APPROVAL_DAG}/runs/**")
    return run_id


def open_review(page: Any, run_id: str) -> None:
    """The task's "Required Action" tab, reached from the run's row in the Required Actions view."""
    page.goto(f"{BASE}/required_actions")
    row = page.get_by_role("row").filter(has_text=run_id)
    row.get_by_role("link", name="review", exact=True).click()
    page.wait_for_url("**/tasks/review/required_actions**")
    page.locator("[data-testid=hitl-option-Approve]").wait_for(state="visible")


def respond(
    page: Any,
    run_id: str,
    answer: str,
    option: str,
    failures: list[str],
    *,
    note: str | None = None,
    comment: str = "",
    screenshot: str | None = None,
) -> None:
    """Open the run's review form, check it shows the model's answer, edit/comment as given and press option."""
    open_review(page, run_id)
    field = page.locator("[name=element_content]")
    field.wait_for(state="visible")
    if field.input_value() != answer:
        failures.append(f"run {run_id}: the form's Answer field holds {field.input_value()!r}, not the model's answer")
    if " ".join(answer.split())[:30] not in " ".join(page.inner_text("body").split()):
        failures.append(f"run {run_id}: the form does not show the model's answer above the fields")
    if note is not None:
        field.fill(note)
    if comment:
        page.locator("[name=element_comment]").fill(comment)
    if screenshot:
        page.screenshot(path=str(SHOTS / screenshot))
    with page.expect_response(
        lambda r: r.request.method == "PATCH" and "/hitlDetails" in r.url, timeout=30_000
    ) as answered:
        page.locator(f"[data-testid=hitl-option-{option}]").click()
    response = answered.value
    if response.status != 200:
        failures.append(f"run {run_id}: pressing {option} answered HTTP {response.status}: {response.text()[:300]}")
        return
    # What the browser sent is what a script would send to respond through the REST API (docs/approval.md).
    sent = response.request.post_data_json or {}
    given = sent.get("params_input") or {}
    if (
        sent.get("chosen_options") != [option]
        or given.get("content") != (note or answer)
        or (given.get("comment") or "") != comment
    ):
        failures.append(f"run {run_id}: pressing {option} sent {str(sent)[:300]}")
    page.get_by_text("Response received at").first.wait_for(state="visible")
    print(f"Run {run_id}: {option} pressed in the UI" + (" after editing the answer" if note else ""))


def wait_for_task(headers: dict[str, str], run_id: str, task_id: str, states: set[str], timeout: float = 180) -> str:
    deadline = time.monotonic() + timeout
    state = None
    while time.monotonic() < deadline:
        response = httpx.get(f"{BASE}{run_path(run_id)}/taskInstances/{task_id}", headers=headers, timeout=30)
        if response.status_code != 404:  # 404 until the scheduler has created the run's task instances
            response.raise_for_status()
            state = response.json().get("state")
        if state in states or state in ("failed", "upstream_failed", "skipped", "success"):
            return str(state)
        time.sleep(1)
    return str(state)


def wait_for_run(headers: dict[str, str], run_id: str, timeout: float = 180) -> str:
    deadline = time.monotonic() + timeout
    state = None
    while time.monotonic() < deadline:
        state = api_call("GET", run_path(run_id), headers=headers)["state"]
        if state in ("success", "failed"):
            return str(state)
        time.sleep(1)
    return str(state)


def run_path(run_id: str) -> str:
    return f"/api/v2/dags/{APPROVAL_DAG}/dagRuns/{quote(run_id, safe='')}"


MISSING = object()


def xcom_value(headers: dict[str, str], run_id: str, task_id: str, key: str) -> Any:
    response = httpx.get(
        f"{BASE}{run_path(run_id)}/taskInstances/{task_id}/xcomEntries/{key}", headers=headers, timeout=30
    )
    if response.status_code == 404:
        return MISSING
    response.raise_for_status()
    value = response.json()["value"]
    return json.loads(value) if isinstance(value, str) and value[:1] in '["{' else value


def check_review_results(headers: dict[str, str], run_ids: list[str], answers: list[Any], failures: list[str]) -> None:
    """What each response did downstream, read back through the REST API."""

    def expect(run_id: str, task_id: str, key: str, wanted: Any) -> None:
        got = xcom_value(headers, run_id, task_id, key)
        if got != wanted:
            shown = "(no such XCom)" if got is MISSING else repr(got)
            failures.append(f"run {run_id}: XCom {task_id}.{key} is {shown[:200]}, expected {wanted!r}"[:400])

    def task_state(run_id: str, task_id: str) -> str | None:
        return api_call("GET", f"{run_path(run_id)}/taskInstances/{task_id}", headers=headers).get("state")

    def detail(run_id: str) -> dict[str, Any]:
        return dict(api_call("GET", f"{run_path(run_id)}/taskInstances/review/-1/hitlDetails", headers=headers))

    approve, edit, reject = run_ids
    for run_id, answer in zip(run_ids, answers, strict=True):
        if not isinstance(answer, str) or not answer.strip():
            failures.append(f"run {run_id}: write_note pushed no answer: {answer!r}")
    expect(approve, "review", "content", answers[0])
    expect(approve, "review", "model_content", answers[0])
    expect(approve, "review", "edited", False)
    expect(approve, "review", "reviewed_by", "admin")
    expect(approve, "publish", "return_value", answers[0])

    expect(edit, "review", "content", EDITED_NOTE)
    expect(edit, "review", "return_value", EDITED_NOTE)
    expect(edit, "review", "model_content", answers[1])
    expect(edit, "review", "edited", True)
    expect(edit, "review", "comment", EDIT_COMMENT)
    expect(edit, "publish", "return_value", EDITED_NOTE)

    expect(reject, "review", "comment", REJECT_COMMENT)
    expect(reject, "review", "reviewed_by", "admin")
    expect(reject, "review", "content", MISSING)
    expect(reject, "review", "return_value", MISSING)
    expect(reject, "review", "model_content", answers[2])
    if (state := task_state(reject, "publish")) != "skipped":
        failures.append(f"run {reject}: publish is {state!r} after the rejection, expected skipped")
    for run_id in (approve, edit):
        if (state := task_state(run_id, "publish")) != "success":
            failures.append(f"run {run_id}: publish is {state!r} after the approval, expected success")
    for run_id, option in ((approve, "Approve"), (edit, "Approve"), (reject, "Reject")):
        shown = detail(run_id)
        who = (shown.get("responded_by_user") or {}).get("name")
        if shown.get("chosen_options") != [option] or who != "admin":
            failures.append(f"run {run_id}: hitlDetails has {shown.get('chosen_options')} by {who!r}, not {option}")


if __name__ == "__main__":
    sys.exit(main())
