import pytest

from wallet_mcp.primitives.errors import InvalidRequest, PayloadTooLarge
from wallet_mcp.primitives.forms import parse_form

FORM = "application/x-www-form-urlencoded"


def test_parses_form_and_treats_empty_values_as_omitted():
    assert parse_form(b"grant_type=client_credentials&scope=&x=%20y", FORM) == {
        "grant_type": "client_credentials",
        "x": " y",
    }


def test_content_type_parameters_are_allowed():
    assert parse_form(b"a=b", "Application/X-WWW-Form-Urlencoded; charset=UTF-8") == {"a": "b"}


@pytest.mark.parametrize("body", [b"a=1&a=2", b"a=&a=2", b"scope=x&scope=x"])
def test_a_parameter_sent_twice_is_invalid_request(body):
    with pytest.raises(InvalidRequest, match="more than once"):
        parse_form(body, FORM)


@pytest.mark.parametrize("content_type", [None, "application/json", "text/plain", "multipart/form-data"])
def test_other_media_types_are_refused(content_type):
    with pytest.raises(InvalidRequest):
        parse_form(b"a=b", content_type)


def test_invalid_utf8_is_invalid_request():
    with pytest.raises(InvalidRequest):
        parse_form(b"a=%ff%fe", FORM)


def test_oversized_body_is_refused():
    with pytest.raises(PayloadTooLarge):
        parse_form(b"a=" + b"x" * 20000, FORM)
