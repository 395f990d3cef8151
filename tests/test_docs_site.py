"""The documentation site: every public name of oplearn is in its API reference, no page loads
anything from the network, and its pages render in a real browser (Debian's headless chromium
through chromedriver, with no host name resolving: no network) with their figures and equations.

The site is the one ``make docs`` built into ``site/`` (``.ci/run`` builds it before the tests);
when there is none, it is built here with the same strict command.
"""

from __future__ import annotations

import importlib
import inspect
import json
import os
import pkgutil
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

import oplearn

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "docs" / "_ext"))
import oplearn_api

ROOT = Path(__file__).resolve().parents[1]
SITE = ROOT / "site"
CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")


@pytest.fixture(scope="module")
def site() -> Path:
    if not (SITE / "index.html").exists():
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        command = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-n", "-q", "-b", "html"]
        subprocess.run(
            [*command, "-d", str(ROOT / "build" / "doctrees"), "docs", str(SITE)], cwd=ROOT, env=env, check=True
        )
    return SITE


def public_names() -> set[str]:
    """``module.name`` of every class and function a public oplearn module defines, and the
    canonical name of everything a package exports in ``__all__``."""
    names = set()
    modules = ["oplearn"] + [m.name for m in pkgutil.walk_packages(oplearn.__path__, prefix="oplearn.")]
    for module_name in modules:
        if any(part.startswith("_") for part in module_name.split(".")):
            continue
        module = importlib.import_module(module_name)
        for name, obj in vars(module).items():
            if not name.startswith("_") and (inspect.isclass(obj) or inspect.isfunction(obj)):
                if obj.__module__ == module_name:
                    names.add(f"{module_name}.{name}")
        for name in getattr(module, "__all__", ()):
            obj = getattr(module, name)
            home = getattr(obj, "__module__", None)
            if home and home.startswith("oplearn"):
                names.add(f"{home}.{obj.__qualname__}")
            else:  # data re-exported by a package is documented where it is defined
                names.add(f"{oplearn_api.imported_from(module_name, name) or module_name}.{name}")
    return names


def test_every_public_name_is_in_the_api_reference(site):
    from sphinx.util.inventory import InventoryFile

    with open(site / "objects.inv", "rb") as f:
        inventory = InventoryFile.load(f, "", lambda base, path: path)
    inventory = getattr(inventory, "data", inventory)  # {"py:class": {name: item}, ...}
    documented = {name for kind, entries in inventory.items() if kind.startswith("py:") for name in entries}
    expected = public_names()
    assert len(expected) > 300  # the walk found the package
    missing = sorted(expected - documented)
    assert not missing, f"{len(missing)} public names missing from the API reference: {missing[:20]}"


class Resources(HTMLParser):
    """The URLs a browser loads by itself from a page: scripts, stylesheets and other linked
    resources, images, frames, media."""

    LINKED = ("stylesheet", "preload", "icon", "modulepreload", "prefetch", "manifest")

    def __init__(self):
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag in ("script", "img", "iframe", "source", "video", "audio", "embed") and attrs.get("src"):
            self.urls.append(attrs["src"])
        if tag == "link" and set((attrs.get("rel") or "").split()) & set(self.LINKED) and attrs.get("href"):
            self.urls.append(attrs["href"])


def external(url: str) -> bool:
    return url.startswith(("http:", "https:", "//"))


def test_no_page_loads_anything_from_the_network(site):
    pages = sorted(site.rglob("*.html"))
    assert len(pages) > 100
    found = {}
    for page in pages:
        parser = Resources()
        parser.feed(page.read_text(encoding="utf-8"))
        if remote := [url for url in parser.urls if external(url)]:
            found[str(page.relative_to(site))] = remote
    assert not found, f"{len(found)} pages load from the network: {dict(list(found.items())[:5])}"
    # the equations' renderer is a file of the site, loaded by the pages with math
    parser = Resources()
    parser.feed((site / "guide" / "pdes.html").read_text(encoding="utf-8"))
    mathjax = [url for url in parser.urls if "mathjax" in url.lower()]
    assert mathjax and all((site / "guide" / url).resolve().is_file() for url in mathjax), mathjax


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None or CHROMEDRIVER is None:
        pytest.skip(
            "Debian's chromium and chromium-driver are not installed (apt-get install chromium chromium-driver)"
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1280,1024",
        "--host-resolver-rules=MAP * ~NOTFOUND",  # no host name resolves: pages get no network
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})  # the requests of each page
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def images(driver) -> list[dict]:
    """``src``, loaded state and natural width of every content image of the open page."""
    return driver.execute_script(
        "return Array.from(document.querySelectorAll('article img')).map("
        "i => ({src: i.getAttribute('src'), complete: i.complete, width: i.naturalWidth}))"
    )


@pytest.mark.parametrize(
    ("page", "heading", "min_images"),
    [
        ("index.html", "oplearn", 1),
        ("gallery/plot_pde_samples.html", "PDE families", 1),
        ("api/oplearn.models.fno.html", "oplearn.models.fno", 0),
    ],
)
def test_page_renders_with_its_figures(site, browser, page, heading, min_images):
    browser.get((site / page).as_uri())
    h1 = browser.find_element("css selector", "article h1")
    assert heading in h1.text
    found = images(browser)
    assert len(found) >= min_images, f"{page}: {len(found)} images"
    broken = [image["src"] for image in found if not (image["complete"] and image["width"] > 0)]
    assert not broken, f"{page}: images that did not load: {broken}"


def test_api_page_documents_its_classes(site, browser):
    browser.get((site / "api" / "oplearn.models.fno.html").as_uri())
    signature = browser.find_element("id", "oplearn.models.fno.FNO")
    assert signature.is_displayed() and "FNO" in signature.text
    assert browser.find_elements("css selector", "dl.py.class dd p"), "the class has no rendered docstring"


def test_equations_render_without_a_network(site, browser):
    """MathJax, loaded from the site's own files, typesets every equation of a page with math."""
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get_log("performance")  # empties the log
    browser.get((site / "guide" / "pdes.html").as_uri())
    count = "return document.querySelectorAll('.math').length"
    typeset = "return document.querySelectorAll('.math mjx-container').length"
    n = browser.execute_script(count)
    assert n >= 2, "the page has inline and display equations"
    WebDriverWait(browser, 60).until(lambda d: d.execute_script(typeset) >= n)
    widths = browser.execute_script(
        "return Array.from(document.querySelectorAll('.math mjx-container')).map(c => c.getBoundingClientRect().width)"
    )
    assert min(widths) > 0, "an equation typeset to nothing"
    raw = browser.execute_script(
        "return Array.from(document.querySelectorAll('.math')).filter(e => e.textContent.includes('\\\\(')).length"
    )
    assert raw == 0, "TeX left untypeset"
    requested = requests(browser)
    assert any("/_static/mathjax/" in url for url in requested), requested
    assert all(url.startswith(("file:", "data:")) for url in requested), requested


def requests(driver) -> list[str]:
    """The URLs the browser requested since the log was last read (DevTools' network events)."""
    events = (json.loads(entry["message"])["message"] for entry in driver.get_log("performance"))
    return [e["params"]["request"]["url"] for e in events if e["method"] == "Network.requestWillBeSent"]
