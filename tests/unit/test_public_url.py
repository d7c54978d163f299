"""Where payment links point: the configured domain, else the URL the request came in on, else SSM."""

from __future__ import annotations

import pytest

from invoicing.adapters import public_url
from invoicing.adapters.public_url import base_url_of_request, public_base_url, request_base_url
from invoicing.errors import ServiceUnavailable


def rest_event(domain: str, requested_path: str, path: str, *, stage: str = "prod", proto: str = "https") -> dict:
    return {
        "path": path,
        "headers": {"X-Forwarded-Proto": proto},
        "requestContext": {"domainName": domain, "path": requested_path, "stage": stage},
    }


def test_execute_api_url_keeps_the_stage():
    # Given a request on the API's own execute-api host
    event = rest_event(
        "abc123.execute-api.eu-west-1.amazonaws.com", "/prod/invoices/inv_1/finalize", "/invoices/inv_1/finalize"
    )
    # Then links point at that host and stage
    assert base_url_of_request(event) == "https://abc123.execute-api.eu-west-1.amazonaws.com/prod"


def test_custom_domain_keeps_its_base_path_and_drops_the_stage():
    # Given a custom domain mapped with base path "billing"
    event = rest_event("pay.example.com", "/billing/pay/tok", "/pay/tok")
    assert base_url_of_request(event) == "https://pay.example.com/billing"
    # And one mapped at the root
    assert base_url_of_request(rest_event("pay.example.com", "/pay/tok", "/pay/tok")) == "https://pay.example.com"


def test_local_stack_url_is_plain_http_without_a_stage():
    event = rest_event("127.0.0.1:3000", "/invoices", "/invoices", stage="local", proto="http")
    assert base_url_of_request(event) == "http://127.0.0.1:3000"


@pytest.mark.parametrize("domain", ["", "evil.example/x"])
def test_no_usable_domain_gives_no_base(domain):
    assert base_url_of_request(rest_event(domain, "/x", "/x")) is None


def test_unknown_proto_is_https():
    assert base_url_of_request(rest_event("h.example", "/x", "/x", proto="gopher")) == "https://h.example"


def test_configured_url_wins_over_the_request():
    with request_base_url(rest_event("h.example", "/x", "/x")):
        assert public_base_url("https://pay.example.com/") == "https://pay.example.com"


def test_request_url_holds_only_inside_the_block():
    # Given no configured URL and no parameter
    with request_base_url(rest_event("h.example", "/x", "/x")):
        assert public_base_url("") == "https://h.example"
    # Then outside a request there is no base URL at all: a clear 503, never a wrong link
    with pytest.raises(ServiceUnavailable):
        public_base_url("")


def test_outside_a_request_the_ssm_parameter_is_read_once(monkeypatch):
    reads = []

    def fake_get_parameter(name, max_age):
        reads.append(name)
        return "https://abc.execute-api.us-east-1.amazonaws.com/dev/"

    import aws_lambda_powertools.utilities.parameters as parameters

    monkeypatch.setattr(parameters, "get_parameter", fake_get_parameter)
    monkeypatch.setattr(public_url, "_parameter_cache", {})
    assert public_base_url("", "/stack/public-base-url") == "https://abc.execute-api.us-east-1.amazonaws.com/dev"
    assert public_base_url("", "/stack/public-base-url") == "https://abc.execute-api.us-east-1.amazonaws.com/dev"
    assert reads == ["/stack/public-base-url"]


def test_unreadable_parameter_is_a_retryable_503(monkeypatch):
    import aws_lambda_powertools.utilities.parameters as parameters

    def failing(name, max_age):
        raise RuntimeError("AccessDenied")

    monkeypatch.setattr(parameters, "get_parameter", failing)
    monkeypatch.setattr(public_url, "_parameter_cache", {})
    with pytest.raises(ServiceUnavailable):
        public_base_url("", "/stack/public-base-url")
