"""The admin as an operator uses it: headless Chromium against Django's live server.

Needs Debian's ``chromium`` and ``chromium-driver`` (``make test`` installs them as root); without
them the test is skipped, except under ``CI=true``, where it fails. Screenshots go to the
test's temporary directory, or to ``$DURABLE_ADMIN_SCREENSHOTS`` (``docs`` refreshes the
pictures the docs show).
"""

from __future__ import annotations

import base64
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import django
import pytest
from django.test import override_settings

from durable_django.models import WorkflowRun
from durable_django.testing import run_until_idle
from tests.conftest import IN_CI
from tests.testapp.workflows import echo_workflow, fulfil_order, repairable

from .runs import worked

pytestmark = [pytest.mark.django_db(transaction=True)]

CHROMIUM = "/usr/bin/chromium"
FLAGS = (
    "--headless=new",
    "--no-sandbox",  # as root
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    # Without these Chromium reaches for the network, which this machine refuses.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1440,1000",
    "--force-device-scale-factor=1",
)


@pytest.fixture
def browser(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    driver_path = shutil.which("chromedriver")
    if not (os.path.exists(CHROMIUM) and driver_path):
        reason = "needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)"
        if IN_CI:
            pytest.fail(f"CI=true: {reason}; make test installs them when it runs as root")
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    monkeypatch.setenv("SE_OFFLINE", "true")  # Selenium Manager must not try to download a browser
    options = Options()
    options.binary_location = CHROMIUM
    for flag in (*FLAGS, f"--user-data-dir={tmp_path / 'profile'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=driver_path))
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def screenshot(driver: Any, name: str, tmp_path: Path) -> Path:
    """Save the whole page as ``name``: the window is made as tall as the page first."""
    folder = Path(os.environ.get("DURABLE_ADMIN_SCREENSHOTS") or tmp_path)
    size = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
    width, height = int(size["width"]), min(int(size["height"]), 6000)
    metrics = {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False}
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
    try:
        data = driver.execute_cdp_cmd("Page.captureScreenshot", {"format": "png"})["data"]
    finally:
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    path = folder / name
    path.write_bytes(base64.b64decode(data))
    return path


def follow(driver: Any, click: Any) -> None:
    """Click, then wait until the next page has replaced this one (a click does not wait for it)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    old = driver.find_element(By.TAG_NAME, "html")
    click()
    WebDriverWait(driver, 15).until(expected_conditions.staleness_of(old))
    WebDriverWait(driver, 15).until(lambda driver: driver.execute_script("return document.readyState") == "complete")


@override_settings(DEBUG=True)  # serve the admin's CSS from the app directories
def test_an_operator_logs_in_filters_opens_a_run_signals_and_cancels_it_and_sees_it_cancelled(
    browser, live_server, django_user_model, tmp_path
):
    from selenium.webdriver.common.by import By

    driver = browser
    # Given: an operator, and runs in several states.
    django_user_model.objects.create_superuser("operator", "operator@example.com", "operator-pw")
    worked(echo_workflow, 21, workflow_id="order-1041-echo")
    worked(repairable, "order-1040", workflow_id="order-1040-refund")
    card = {"number": "4242424242424242", "cvc": "123"}
    run = worked(fulfil_order, 1042, 3499, "ann@example.com", card=card, workflow_id="order-1042")
    run.signal("gift_note", {"text": "Happy birthday!"})
    assert run.status == WorkflowRun.Status.WAITING

    # When: they log in,
    driver.get(f"{live_server.url}/admin/login/?next=/admin/durable_django/workflowrun/")
    driver.find_element(By.NAME, "username").send_keys("operator")
    driver.find_element(By.NAME, "password").send_keys("operator-pw")
    follow(driver, driver.find_element(By.CSS_SELECTOR, "input[type=submit]").click)
    assert "order-1040-refund" in driver.find_element(By.ID, "result_list").text
    screenshot(driver, "admin-list.png", tmp_path)

    # filter the list down to the waiting runs,
    follow(driver, driver.find_element(By.CSS_SELECTOR, ".durable-count.durable-status-waiting").click)
    listed = driver.find_element(By.ID, "result_list").text
    assert "order-1042" in listed and "order-1040-refund" not in listed

    # open the run,
    follow(driver, driver.find_element(By.CSS_SELECTOR, "#result_list th.field-run a").click)
    page = driver.find_element(By.ID, "content-main").text
    assert "tests.charge_card" in page and "2 attempts" in page
    assert "order_id=1042" in page, "inputs and arguments show with their parameter names"
    assert "4242424242424242" not in driver.page_source, "the card number is redacted"
    screenshot(driver, "admin-run.png", tmp_path)

    # see which signal the run waits for on the signal form, under this Django's breadcrumbs,
    follow(driver, driver.find_element(By.LINK_TEXT, "SEND SIGNAL").click)
    offered = driver.find_elements(By.CSS_SELECTOR, "datalist#durable-signal-names option")
    assert [option.get_attribute("value") for option in offered] == ["shipped"]
    assert driver.find_element(By.NAME, "name").get_attribute("value") == "shipped"
    crumbs = "ol.breadcrumbs li" if django.VERSION >= (6, 1) else "div.breadcrumbs a"
    trail = [crumb.text for crumb in driver.find_elements(By.CSS_SELECTOR, crumbs)]
    assert trail[:3] == ["Home", "Durable workflows", "Workflow runs"] and "order-1042" in trail[3], trail
    follow(driver, driver.find_element(By.LINK_TEXT, "Back to the run").click)

    # and cancel it.
    follow(driver, driver.find_element(By.LINK_TEXT, "CANCEL RUN").click)
    assert "Cancel this run?" in driver.find_element(By.ID, "content").text
    follow(driver, driver.find_element(By.CSS_SELECTOR, "input[type=submit][value='Yes, cancel the run']").click)

    # Then: the page says so, and once a worker has passed by, the run is cancelled.
    assert "will be cancelled at its current yield" in driver.find_element(By.CSS_SELECTOR, ".messagelist").text
    run_until_idle()
    follow(driver, driver.refresh)
    headline = driver.find_element(By.CSS_SELECTOR, ".durable-headline").text
    assert headline.startswith("CANCELLED")
    assert "durable_django.exceptions.Cancelled" in driver.find_element(By.CSS_SELECTOR, ".durable-error").text
    assert driver.find_elements(By.LINK_TEXT, "CANCEL RUN") == [], "no second cancel for a finished run"
