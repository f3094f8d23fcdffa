"""Driving the console over plain HTTP (no browser): sign in, read tokens off pages."""

from __future__ import annotations

import re

import httpx

__all__ = ["csrf_of", "sign_in_token", "signed_in_client"]


def sign_in_token(client: httpx.Client, ui: str = "/ui") -> str:
    found = re.search(r'name="_signin" value="([^"]+)"', client.get(f"{ui}/sign-in").text)
    assert found, "the sign-in form has no token"
    return found.group(1)


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf-token" content="([^"]*)"', html)
    assert found, "the page has no CSRF token"
    return found.group(1)


def signed_in_client(base_url: str, secret: str, *, username: str = "", ui: str = "/ui") -> httpx.Client:
    client = httpx.Client(base_url=base_url, follow_redirects=False, timeout=10)
    answer = client.post(
        f"{ui}/sign-in",
        data={"_signin": sign_in_token(client, ui), "username": username, "secret": secret, "next": ui},
    )
    assert answer.status_code == 303, answer.text
    return client
