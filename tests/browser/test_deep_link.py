"""A page's URL opened first on a fresh server still gets the app's navigation
(Streamlit would otherwise fall back to listing the pages/ folder)."""

import pytest

from helpers import TIMEOUT

pytestmark = pytest.mark.slow  # see pyproject.toml


def test_deep_link_on_a_fresh_server(page, server):
    page.set_default_timeout(TIMEOUT)
    page.goto(server.url + "/about")
    nav = page.get_by_test_id("stSidebarNav")
    nav.get_by_text("Compare models").wait_for()
    assert nav.get_by_text("common", exact=True).count() == 0
    page.goto(server.url + "/about")
    page.get_by_role("heading", name="The models").wait_for()
    assert nav.get_by_text("common", exact=True).count() == 0
