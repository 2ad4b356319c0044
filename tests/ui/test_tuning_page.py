"""The tuning page in a real headless Chromium: the slider moves, the challenge rate follows,
and the exported ruleset is valid. A screenshot is kept in test-artifacts/."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from riskengine.adapters.auth import KeyStore
from riskengine.core.rules import parse_ruleset
from tests.servers import clean_env, serve

ARTIFACTS = Path(__file__).parents[2] / "test-artifacts"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="Debian's chromium is not installed (make test installs it)")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("ui")
    events = tmp / "events.jsonl"
    env = clean_env()
    cli = [sys.executable, "-m", "riskengine.tools.cli"]
    subprocess.run([*cli, "simulate", "--users", "120", "--days", "25", "--seed", "4",
                    "--out", str(events)], check=True, env=env, capture_output=True)
    report = tmp / "backtest.json"
    subprocess.run([*cli, "backtest", str(events), "--rules", "riskengine/data/default_rules.yaml",
                    "--json", str(report)], check=True, env=env, capture_output=True,
                   cwd=Path(__file__).parents[2])
    _, key = KeyStore(tmp / "keys.json").create("ui-test", ["admin"])
    proc, base = serve(
        "--store", f"sqlite:{tmp / 'r.db'}",
        env={"RISKENGINE_ENV": "development", "RISKENGINE_API_KEYS": str(tmp / "keys.json"),
             "RISKENGINE_BACKTEST_REPORT": str(report), "RISKENGINE_MODEL_DIR": str(tmp / "m")})
    yield base, key, json.loads(report.read_text())
    proc.terminate()
    proc.wait(timeout=15)


def test_slider_changes_the_challenge_rate_and_export_is_a_valid_ruleset(server) -> None:
    from playwright.sync_api import sync_playwright

    base, key, report = server
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run"])
        page = browser.new_page(viewport={"width": 1000, "height": 900})
        page.goto(f"{base}/ui")
        page.wait_for_selector("#auth:not(.hidden)")  # no key yet: the page asks for one
        page.fill("#key", key)
        page.click("#use-key")
        page.wait_for_function("document.querySelector('#source').textContent.includes('Backtest')")
        before = page.text_content("#customer-challenge")
        page.eval_on_selector("#challenge", "el => { el.value = '0.05'; "
                              "el.dispatchEvent(new Event('input')); }")
        after = page.text_content("#customer-challenge")
        assert before != after
        low = float(after.split()[0])
        page.eval_on_selector("#challenge", "el => { el.value = '0.80'; "
                              "el.dispatchEvent(new Event('input')); }")
        high = float(page.text_content("#customer-challenge").split()[0])
        assert low > high  # a lower threshold challenges more customers
        assert page.locator("#rules tbody tr").count() == len(
            report["candidate"]["rule_hit_rates"])
        with page.expect_download() as download:
            page.click("#export")
        exported = Path(download.value.path()).read_text()
        page.screenshot(path=str(ARTIFACTS / "tuning-page.png"), full_page=True)
        browser.close()
    ruleset = parse_ruleset(exported)
    assert ruleset.thresholds.challenge == pytest.approx(0.80)
