"""Failed console sign-ins are counted in /metrics, for alerting on someone guessing."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.console.conftest import MASTER_KEY
from tests.console.forms import sign_in_token
from tests.support import GatewayServer


def _failures(console: GatewayServer) -> float:
    body = httpx.get(console.url + "/metrics").text
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            if sample.name == "turnout_console_sign_in_failures_total":
                return sample.value
    raise AssertionError("no turnout_console_sign_in_failures_total in /metrics")


def test_two_failed_sign_ins_count_two(console: GatewayServer) -> None:
    # one scrape only, after the sign-ins: a render is served again for `metrics_max_age` seconds
    # (this module's gateway has seen no other sign-in)
    with httpx.Client(base_url=console.url) as client:
        for secret in ("wrong-1", "wrong-2", MASTER_KEY):  # a success is not counted
            client.post(
                "/ui/sign-in", data={"_signin": sign_in_token(client), "username": "", "secret": secret}
            )
    assert _failures(console) == 2
