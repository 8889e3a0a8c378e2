"""`make test-ui`: the connection form, the Test button and a DAG run, in Airflow's real UI in headless Chromium.

Starts `airflow standalone` on 127.0.0.1 with a fresh AIRFLOW_HOME (.airflow-ui/) and the emulator as the API,
then, in Debian's Chromium driven by Playwright: logs in, checks the "AI/ML API" connection form (fields,
labels, hidden ones, prefilled extras), saves a good-key and a bad-key connection, presses Test on both, unpauses
and triggers example_aiml_summarize from the UI, waits for it, and reads content, reasoning and usage in the XCom
view. Screenshots go to docs/img/. Every process it starts is stopped at the end.

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
            drive_ui(emulator.base_url, failures)
        finally:
            stop_airflow(airflow)
    for failure in failures:
        print(f"FAILED: {failure}")
    print(
        "UI test passed: form, Test button (good and bad key), DAG run and XCom view"
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


def drive_ui(api_base_url: str, failures: list[str]) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=shutil.which("chromium"), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
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


def run_dag_and_read_xcom(page: Any, failures: list[str]) -> None:
    dag = "example_aiml_summarize"
    page.goto(f"{BASE}/dags/{dag}")
    page.wait_for_timeout(1500)
    page.get_by_role("checkbox").first.click(force=True)  # unpause
    page.get_by_role("button", name="Trigger Dag").click()
    page.get_by_role("dialog").get_by_role("button", name="Trigger").last.click()
    token = api_call("POST", "/auth/token", json={"username": "admin", "password": admin_password()})
    headers = {"Authorization": f"Bearer {token['access_token']}"}
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


if __name__ == "__main__":
    sys.exit(main())
