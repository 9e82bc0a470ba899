"""The explorer in a real browser: headless Chromium (Debian `chromium` + `chromium-driver`) driven by Selenium.

Overview -> search a gene -> its feature -> follow an edge to a neighbour -> the neighbourhood graph drawn by
cytoscape -> a click on a node opens that feature; no console errors on the way. With CI=true a missing browser
fails the test instead of skipping it.
"""

from __future__ import annotations

import os
import shutil

import pytest

from atlas.explorer.app import assets_missing
from tests.explorer import ExplorerServer, build_explorer_atlas

pytestmark = pytest.mark.neo4j
CHROMIUM, CHROMEDRIVER = "chromium", "chromedriver"
INSTALL = "apt-get install -y chromium chromium-driver (make test does it when run as root)"


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason}; CI needs the browser test: {INSTALL}")
    pytest.skip(f"{reason}: {INSTALL}")


@pytest.fixture(scope="module")
def browser():
    chromium, chromedriver = shutil.which(CHROMIUM), shutil.which(CHROMEDRIVER)
    if not chromium or not chromedriver:
        _unavailable("no chromium or chromedriver on PATH")
    if assets_missing():
        _unavailable(assets_missing())
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     "--window-size=1280,900"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(chromedriver), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def explorer(graph):
    run, hub = build_explorer_atlas(graph)
    with ExplorerServer() as server:
        yield server, run, hub


def console_errors(driver) -> list[str]:
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def test_a_biologist_walks_from_a_gene_to_a_neighbourhood_graph(browser, explorer):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    server, run, hub = explorer
    errors: list[str] = []
    browser.get(server.url + "/")
    assert "toy" in browser.find_element(By.ID, "runs").text
    errors += console_errors(browser)

    gene = run.features.set_index("uid").loc[hub, "top_genes"][0]
    box = browser.find_element(By.ID, "search")
    box.send_keys(gene.lower())
    box.submit()
    WebDriverWait(browser, 30).until(lambda driver: "/search" in driver.current_url)
    browser.find_element(By.CSS_SELECTOR, "#found-genes a").click()
    WebDriverWait(browser, 30).until(lambda driver: "/genes/" in driver.current_url)
    errors += console_errors(browser)

    browser.find_element(By.CSS_SELECTOR, "#gene-features a").click()
    WebDriverWait(browser, 30).until(lambda driver: driver.find_elements(By.ID, "feature-uid"))
    assert browser.find_element(By.ID, "feature-uid").text == hub
    errors += console_errors(browser)

    link = browser.find_element(By.CSS_SELECTOR, "#edges-out a.neighbour")
    neighbour = link.text
    link.click()
    WebDriverWait(browser, 30).until(lambda driver: driver.find_element(By.ID, "feature-uid").text == neighbour)
    assert neighbour in set(run.edges.loc[run.edges["source"] == hub, "target"])
    errors += console_errors(browser)

    browser.find_element(By.ID, "neighbourhood-link").click()
    drawn = WebDriverWait(browser, 30).until(
        lambda driver: driver.execute_script("return window.atlasGraph ? window.atlasGraph.nodes().length : 0"))
    expected = server.json(f"/api/features/{neighbour}/neighbourhood")
    assert drawn == len(expected["nodes"]) > 1
    assert browser.execute_script("return window.atlasGraph.edges().length") == len(expected["edges"])
    errors += console_errors(browser)

    other = next(node["uid"] for node in expected["nodes"] if not node["center"])
    browser.execute_script("window.atlasGraph.getElementById(arguments[0]).emit('tap')", other)
    WebDriverWait(browser, 30).until(lambda driver: driver.find_elements(By.ID, "feature-uid")
                                     and driver.find_element(By.ID, "feature-uid").text == other)
    errors += console_errors(browser)
    assert errors == []
