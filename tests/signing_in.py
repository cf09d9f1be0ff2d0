"""Signing in to the pages in a browser, as a person does: the pages' Sign in button, then the
sandbox's identity provider's page, where each demo account (mchub.orchestration.identity) is
one button."""

from playwright.sync_api import Page, expect


def sign_in(page: Page, ui_url: str, who: str) -> None:
    """Sign in as the demo account `who` ("alice", "ada" ...) and wait for the pages to say so."""
    page.goto(ui_url)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("button", name=who, exact=True).click()  # the provider's form
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()


def sign_out(page: Page) -> None:
    """Sign out, through the provider's end of session, back to the sign-in screen."""
    page.get_by_role("button", name="Sign out").click()
    page.get_by_role("button", name="End session").click()  # the provider's confirmation
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
