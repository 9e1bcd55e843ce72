"""API Gateway's own error answers carry the security headers the handler puts on its
responses (issue 16, item 13): a throttled request (429), one the validator refuses (400) or a
method with no route (403) is a JSON response of the same origin as the live page."""

from __future__ import annotations

import pytest

from functions.leaderboard_api.config import SECURITY_HEADERS
from infra.components.leaderboard_api import GATEWAY_ERROR_TEMPLATE
from tests.infra.helpers import Assembly

pytestmark = [pytest.mark.synth, pytest.mark.xdist_group("synth")]


def test_gateway_responses_carry_the_security_headers(dev: Assembly) -> None:
    (api_id,) = dev.resources("App", "AWS::ApiGateway::RestApi")
    responses = {
        r["Properties"]["ResponseType"]: r["Properties"]
        for r in dev.resources("App", "AWS::ApiGateway::GatewayResponse").values()
    }
    assert sorted(responses) == ["DEFAULT_4XX", "DEFAULT_5XX"]
    for props in responses.values():
        assert props["RestApiId"] == {"Ref": api_id}
        assert props["ResponseParameters"] == {
            "gatewayresponse.header.X-Content-Type-Options": "'nosniff'",
            "gatewayresponse.header.X-Frame-Options": "'DENY'",
            "gatewayresponse.header.Referrer-Policy": "'no-referrer'",
        }
        assert props["ResponseTemplates"] == {"application/json": GATEWAY_ERROR_TEMPLATE}
    assert set(SECURITY_HEADERS) == {"X-Content-Type-Options", "X-Frame-Options", "Referrer-Policy"}
