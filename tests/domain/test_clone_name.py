"""The clone name: the request encoded as Go's json.Marshal writes it, hashed, and appended.

Every expected encoding below is written out by hand from Go's rules (field order, omitempty,
HTML escaping, short escapes, UTF-8 kept), so the tests check the encoder, not themselves.
"""

from __future__ import annotations

import hashlib

import pytest

from market_ledger.domain.clone_name import (
    CloneEnv,
    clone_app_name,
    clone_hash_input,
    clone_request_hash,
    go_json_string,
)


def first_six(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:6]


def test_given_the_replaced_systems_example_when_hashed_then_its_clone_name_comes_out() -> None:
    # given the request of the replaced system's documented example
    envs = [CloneEnv("JELLYFIN_PublishedServerUrl", "https://kids.example.com")]
    entrances = [("jellyfin", "Jellyfin Kids")]
    expected = (
        b'{"source":"market.olares","app_name":"jellyfin","title":"Jellyfin Kids",'
        b'"envs":[{"envName":"JELLYFIN_PublishedServerUrl","value":"https://kids.example.com"}],'
        b'"entrances":[{"name":"jellyfin","title":"Jellyfin Kids"}]}'
    )
    # when it is encoded and hashed
    data = clone_hash_input("market.olares", "jellyfin", "Jellyfin Kids", envs, entrances)
    request_hash = clone_request_hash("market.olares", "jellyfin", "Jellyfin Kids", envs, entrances)
    # then the bytes, the hash and the name are the replaced system's
    assert data == expected
    assert request_hash == first_six(expected) == "bdedfa"
    assert clone_app_name("jellyfin", request_hash) == "jellyfinbdedfa"


def test_given_no_envs_and_no_entrances_when_encoded_then_both_keys_are_left_out() -> None:
    expected = b'{"source":"market","app_name":"n8n","title":""}'
    assert clone_hash_input("market", "n8n", "") == expected
    assert clone_request_hash("market", "n8n", "", [], []) == first_six(expected)


def test_given_html_characters_in_the_title_when_encoded_then_they_are_escaped_as_go_does() -> None:
    expected = b'{"source":"market","app_name":"a","title":"Tom \\u0026 Jerry \\u003c3 \\u003e"}'
    assert clone_hash_input("market", "a", "Tom & Jerry <3 >") == expected
    assert clone_request_hash("market", "a", "Tom & Jerry <3 >") == first_six(expected)


def test_given_a_non_ascii_title_when_encoded_then_it_stays_utf_8() -> None:
    expected = b'{"source":"market","app_name":"a","title":"Caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac"}'
    assert clone_hash_input("market", "a", "Café 日本") == expected
    assert clone_request_hash("market", "a", "Café 日本") == first_six(expected)


def test_given_quotes_and_backslashes_when_encoded_then_they_are_escaped() -> None:
    expected = b'{"source":"market","app_name":"a","title":"say \\"hi\\" \\\\ bye / ok"}'
    assert clone_hash_input("market", "a", 'say "hi" \\ bye / ok') == expected


def test_given_control_characters_when_encoded_then_go_short_forms_and_u00xx_are_used() -> None:
    # Go (1.22 and later) writes \b and \f in short form; DEL is not a control character to it
    title = "\n\r\t\b\f\x00\x01\x1f\x7f"
    expected = (
        b'{"source":"market","app_name":"a","title":"\\n\\r\\t\\b\\f\\u0000\\u0001\\u001f\x7f"}'
    )
    assert clone_hash_input("market", "a", title) == expected
    assert clone_request_hash("market", "a", title) == first_six(expected)


def test_given_line_and_paragraph_separators_when_encoded_then_they_are_escaped() -> None:
    expected = b'{"source":"market","app_name":"a","title":"x\\u2028y\\u2029z"}'
    assert clone_hash_input("market", "a", "x\u2028y\u2029z") == expected


def test_given_a_lone_surrogate_when_encoded_then_it_is_written_as_the_replacement_character() -> (
    None
):
    expected = b'{"source":"market","app_name":"a","title":"x\xef\xbf\xbdy"}'
    assert clone_hash_input("market", "a", "x\ud800y") == expected


def test_given_envs_and_entrances_out_of_order_when_encoded_then_they_are_sorted_by_name() -> None:
    # given envs and entrances in no particular order, one name beyond ASCII
    envs = [CloneEnv("\u00e9t\u00e9", "3"), CloneEnv("TZ", "UTC"), CloneEnv("A_KEY", "1")]
    entrances = [("web", "Web"), ("admin", "Admin")]
    expected = (
        b'{"source":"market","app_name":"a","title":"t",'
        b'"envs":[{"envName":"A_KEY","value":"1"},{"envName":"TZ","value":"UTC"},'
        b'{"envName":"\xc3\xa9t\xc3\xa9","value":"3"}],'
        b'"entrances":[{"name":"admin","title":"Admin"},{"name":"web","title":"Web"}]}'
    )
    # when encoded, then sorted by the UTF-8 bytes of the name
    assert clone_hash_input("market", "a", "t", envs, entrances) == expected
    assert clone_request_hash("market", "a", "t", envs, entrances) == first_six(expected)


def test_given_two_envs_of_the_same_name_when_encoded_then_they_keep_the_request_order() -> None:
    # Go sorts up to 12 elements by insertion, which keeps equal keys in their order
    first = clone_hash_input("market", "a", "t", [CloneEnv("X", "2"), CloneEnv("X", "1")])
    again = clone_hash_input("market", "a", "t", [CloneEnv("X", "1"), CloneEnv("X", "2")])
    assert first.endswith(b'"envs":[{"envName":"X","value":"2"},{"envName":"X","value":"1"}]}')
    assert again.endswith(b'"envs":[{"envName":"X","value":"1"},{"envName":"X","value":"2"}]}')


def test_given_envs_without_a_value_or_with_a_value_from_when_encoded_then_omitempty_holds() -> (
    None
):
    envs = [
        CloneEnv("DB_PASSWORD", value_from="OLARES_USER_PASSWORD"),
        CloneEnv("EMPTY", ""),
        CloneEnv("NONE"),
        CloneEnv("REF", value_from=""),
    ]
    expected = (
        b'{"source":"market","app_name":"a","title":"",'
        b'"envs":[{"envName":"DB_PASSWORD","valueFrom":{"envName":"OLARES_USER_PASSWORD"}},'
        b'{"envName":"EMPTY"},{"envName":"NONE"},{"envName":"REF","valueFrom":{}}]}'
    )
    assert clone_hash_input("market", "a", "", envs) == expected


def test_given_html_characters_in_env_values_and_entrance_titles_then_they_are_escaped_too() -> (
    None
):
    envs = [CloneEnv("URL", "http://x/?a=1&b=<2>")]
    expected = (
        b'{"source":"market","app_name":"a","title":"",'
        b'"envs":[{"envName":"URL","value":"http://x/?a=1\\u0026b=\\u003c2\\u003e"}],'
        b'"entrances":[{"name":"w","title":"R\\u0026D \\"Lab\\""}]}'
    )
    assert clone_hash_input("market", "a", "", envs, [("w", 'R&D "Lab"')]) == expected


def test_given_any_two_different_requests_then_their_hashes_differ_by_the_request() -> None:
    one = clone_request_hash("market", "jellyfin", "Kids")
    other = clone_request_hash("market", "jellyfin", "Kids ")
    assert one != other and one == clone_request_hash("market", "jellyfin", "Kids")


def test_given_a_plain_string_when_escaped_then_it_is_only_quoted() -> None:
    assert go_json_string("plain-ascii_1.2") == '"plain-ascii_1.2"'


def test_given_an_env_value_when_shown_then_its_repr_does_not_carry_the_value() -> None:
    assert "s3cret" not in repr(CloneEnv("PASSWORD", "s3cret"))


@pytest.mark.parametrize(
    ("raw", "request_hash"),
    [("", "bdedfa"), ("jellyfin", "BDEDFA"), ("jellyfin", "bdedf"), ("jellyfin", "bdedfag")],
)
def test_given_a_missing_name_or_a_malformed_hash_when_naming_then_it_is_refused(
    raw: str, request_hash: str
) -> None:
    with pytest.raises(ValueError):
        clone_app_name(raw, request_hash)
