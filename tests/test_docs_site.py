"""The documentation site: every public name of oplearn is in its API reference, and its pages
render in a real browser (Debian's headless chromium through chromedriver) with their figures.

The site is the one ``make docs`` built into ``site/`` (``.ci/run`` builds it before the tests);
when there is none, it is built here with the same strict command.
"""

from __future__ import annotations

import importlib
import inspect
import os
import pkgutil
import shutil
import subprocess
import sys
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
    ):
        options.add_argument(argument)
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
