"""`domain.sandbox` (and the limits of `domain.template`): the sandboxed templates of a Secret's
extra keys, with real Jinja.

Covers: the two documented examples rendered exactly; tojson keeping JSON valid (quotes,
`</script>`); b64encode, the string filters, `default`, `is defined`, if/elif/else, comparisons and
boolean logic; every construct outside the allowlist refused with a message naming it and the key
(loops, attributes, indexing, arithmetic, calls, include/import/extends, set, macro, globals such
as lipsum and cycler, unknown names, filter arguments, deep nesting, more than three filters);
account variables only with `includeAccountSecrets: true`; syntax errors with key and line; the
limits on template size, key count and rendered size (final and intermediate); and that no message
or chained exception carries a value. No timing assertions: the bounds are on sizes.
"""

from __future__ import annotations

import base64
import json

import pytest

from connector_operator.domain.sandbox import SandboxedTemplate, compile_templates
from connector_operator.domain.template import (
    ACCOUNT_VARIABLES,
    MAX_INT_DIGITS,
    MAX_KEYS,
    MAX_NODES,
    MAX_RENDERED,
    MAX_SECRET_BYTES,
    MAX_TEMPLATE,
    VARIABLES,
    TemplateError,
)

VALUES = {
    "token": "tok-3f9a",
    "instanceID": "4711",
    "apiURL": "https://api.openconnectors.eu10.ext.hana.ondemand.com/elements/api-v2",
    "connectorKey": "sfdc",
    "instanceName": "crm",
    "userSecret": "user-secret-value",
    "organizationSecret": "org-secret-value",
}


def render(source: str, values: dict[str, str] | None = None, *, account: bool = False) -> str:
    template = compile_templates({"key": source}, include_account_secrets=account)
    return template.render(VALUES if values is None else values)["key"]


def refusal(source: str, *, account: bool = False, key: str = "key") -> str:
    with pytest.raises(TemplateError) as caught:
        compile_templates({key: source}, include_account_secrets=account)
    assert caught.value.message == str(caught.value)
    assert f"key {key!r}" in caught.value.message
    return caught.value.message


# --- what renders --------------------------------------------------------------------------------


def test_the_authorization_example_renders_exactly() -> None:
    template = compile_templates(
        {
            "OC_AUTHORIZATION": "User {{ userSecret }}, Organization {{ organizationSecret }}, "
            "Element {{ token }}"
        },
        include_account_secrets=True,
    )
    assert template.render(VALUES) == {
        "OC_AUTHORIZATION": "User user-secret-value, Organization org-secret-value, Element tok-3f9a"
    }


def test_the_config_json_example_renders_valid_json() -> None:
    source = (
        '{"baseUrl": {{ apiURL | tojson }}, "instanceId": {{ instanceID | tojson }}, '
        '"token": {{ token | tojson }}}'
    )
    rendered = compile_templates({"config.json": source}, include_account_secrets=False).render(VALUES)
    assert json.loads(rendered["config.json"]) == {
        "baseUrl": VALUES["apiURL"],
        "instanceId": "4711",
        "token": "tok-3f9a",
    }


def test_tojson_keeps_hostile_strings_inside_valid_json() -> None:
    name = 'a "quoted" </script><script>alert(1)</script> \\ \n & \' name \u00e9\U0001f600'
    rendered = render('{"name": {{ instanceName | tojson }}}', {**VALUES, "instanceName": name})
    assert json.loads(rendered) == {"name": name}
    assert "</script>" not in rendered
    assert "<" not in rendered
    assert "&" not in rendered


def test_several_keys_render_in_the_spec_order() -> None:
    data = {"b": "{{ token }}", "a": "{{ connectorKey }}"}
    template = compile_templates(data, include_account_secrets=False)
    assert template.keys == ("b", "a")
    assert list(template.render(VALUES).items()) == [("b", "tok-3f9a"), ("a", "sfdc")]


def test_no_keys_render_nothing() -> None:
    assert compile_templates({}, include_account_secrets=False).render(VALUES) == {}


def test_b64encode_is_base64_of_the_utf8_string() -> None:
    value = "user:pässwörd \U0001f600"
    assert render("{{ token | b64encode }}", {**VALUES, "token": value}) == base64.b64encode(
        value.encode("utf-8")
    ).decode("ascii")
    assert render("Basic {{ (connectorKey ~ ':' ~ token) | b64encode }}") == "Basic " + base64.b64encode(
        b"sfdc:tok-3f9a"
    ).decode("ascii")


def test_the_string_filters() -> None:
    values = {**VALUES, "instanceName": "  Mixed Case  ", "connectorKey": "a b&c/d?e=é"}
    assert render("{{ instanceName | trim | upper }}", values) == "MIXED CASE"
    assert render("{{ instanceName | lower }}", values) == "  mixed case  "
    assert render("{{ instanceName | trim(' M') }}", values) == "ixed Case"
    assert render("{{ connectorKey | urlencode }}", values) == "a%20b%26c/d%3Fe%3D%C3%A9"


def test_default_and_is_defined_cover_a_missing_value() -> None:
    values = {name: VALUES[name] for name in ("token", "apiURL")}
    assert render("{{ instanceName | default('none') }}", values) == "none"
    assert render("{{ token | default('none') }}", values) == "tok-3f9a"
    assert render("{{ instanceName | default(token) }}", values) == "tok-3f9a"
    assert render("{{ 'yes' if instanceName is defined else 'no' }}", values) == "no"
    assert render("{{ 'yes' if token is defined else 'no' }}", values) == "yes"
    assert render("{% if instanceName is not defined %}absent{% endif %}", values) == "absent"


def test_if_elif_else_comparisons_and_boolean_logic() -> None:
    source = (
        "{% if connectorKey == 'sfdc' and not (instanceID != '4711') %}salesforce"
        "{% elif 'hub' in connectorKey or connectorKey == 'x' %}hub{% else %}other{% endif %}"
    )
    assert render(source) == "salesforce"
    assert render(source, {**VALUES, "connectorKey": "hubspot"}) == "hub"
    assert render(source, {**VALUES, "connectorKey": "zendesk"}) == "other"
    assert render("{{ 'eu' if 'eu10' in apiURL else 'us' }}") == "eu"
    assert render("{{ 'eu' if 'us10' in apiURL }}") == ""  # Jinja: no else part, an empty string
    assert render("{{ instanceName or 'unnamed' }}", {**VALUES, "instanceName": ""}) == "unnamed"


def test_text_and_a_trailing_newline_are_kept_verbatim() -> None:
    source = '{\n  "token": {{ token | tojson }}\n}\n'
    assert render(source) == '{\n  "token": "tok-3f9a"\n}\n'
    assert render("{% raw %}{{ token }}{% endraw %} {# a comment #}") == "{{ token }} "


def test_many_concatenations_within_the_caps_render() -> None:
    source = "{{ " + " ~ ".join(["token", "'-'"] * 70) + " }}"
    assert len(source) <= MAX_TEMPLATE
    assert render(source) == "tok-3f9a-" * 70


def test_the_same_spec_compiles_to_an_equal_template() -> None:
    data = {"a": "{{ token }}", "b": "{{ apiURL | tojson }}"}
    first = compile_templates(data, include_account_secrets=False)
    assert compile_templates(dict(data), include_account_secrets=False) == first
    assert isinstance(first, SandboxedTemplate)
    assert first != compile_templates(data, include_account_secrets=True)


# --- what is refused when the spec is read --------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("{% for c in token %}{{ c }}{% endfor %}", "'{% for %}' loop (For)"),
        ("{{ ''.__class__ }}", "attribute access ('.name') (Getattr)"),
        ("{{ token.upper() }}", "(Call)"),
        ("{{ token['__class__'] }}", "(Getitem)"),
        ("{{ token[0] }}", "indexing or slicing ('[...]') (Getitem)"),
        ("{{ token[0:2] }}", "(Getitem)"),
        ("{{ 'a' * 100000000 }}", "the '*' operator (Mul)"),
        ("{{ token ** 99 }}", "(Pow)"),
        ("{{ token + token }}", "the '+' operator (Add)"),
        ("{{ '%s' % token }}", "(Mod)"),
        ("{{ -1 }}", "(Neg)"),
        ("{{ range(10) }}", "a function or method call (Call)"),
        ("{{ lipsum() }}", "(Call)"),
        ("{{ cycler('a', 'b').next() }}", "(Call)"),
        ("{{ dict(a=1) }}", "(Call)"),
        ("{% include 'other' %}", "'{% include %}' (Include)"),
        ("{% import 'other' as o %}", "(Import)"),
        ("{% from 'other' import x %}", "(FromImport)"),
        ("{% extends 'base' %}", "(Extends)"),
        ("{% block b %}x{% endblock %}", "(Block)"),
        ("{% set x = token %}{{ x }}", "'{% set %}' (Assign)"),
        ("{% set x %}{{ token }}{% endset %}", "(AssignBlock)"),
        ("{% macro m() %}x{% endmacro %}", "'{% macro %}' (Macro)"),
        ("{% call m() %}x{% endcall %}", "a '{% call %}' block (CallBlock)"),
        ("{% filter upper %}{{ token }}{% endfilter %}", "(FilterBlock)"),
        ("{% with x = token %}{{ x }}{% endwith %}", "(With)"),
        ("{% autoescape true %}{{ token }}{% endautoescape %}", "'{% autoescape %}'"),
        ("{{ [token] }}", "a list (List)"),
        ("{{ (token, token) }}", "a tuple (Tuple)"),
        ("{{ {'a': token} }}", "a dict (Dict)"),
    ],
)
def test_constructs_outside_the_allowlist_are_refused(source: str, expected: str) -> None:
    message = refusal(source, key="config.json")
    assert expected in message
    assert "is not allowed in a Secret template" in message
    assert message.startswith("key 'config.json': line 1: ")


@pytest.mark.parametrize(
    "name", ["config", "cycler", "lipsum", "range", "joiner", "namespace", "self", "loop", "environ", "TOKEN"]
)
def test_unknown_names_are_refused(name: str) -> None:
    message = refusal(f"{{{{ {name} }}}}")
    assert f"unknown variable {name!r}" in message
    assert all(variable in message for variable in VARIABLES + ACCOUNT_VARIABLES)
    assert f"unknown variable {name!r}" in refusal(f"{{{{ 'x' if {name} is defined else 'y' }}}}")


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("{{ token | e }}", "the filter 'e' is not allowed; the filters are tojson, b64encode"),
        ("{{ token | attr('__class__') }}", "the filter 'attr' is not allowed"),
        ("{{ token | format(token) }}", "the filter 'format' is not allowed"),
        ("{{ token | tojson(indent=100000000) }}", "the filter 'tojson' takes no keyword or * arguments"),
        ("{{ token | tojson(4) }}", "the filter 'tojson' takes no arguments"),
        ("{{ token | upper(*apiURL) }}", "the filter 'upper' takes no keyword or * arguments"),
        ("{{ token | default('a', true, 3) }}", "the filter 'default' takes at most 2 arguments"),
        ("{{ token | trim('a', 'b') }}", "the filter 'trim' takes at most 1 argument"),
        ("{{ token is string }}", "the test 'string' is not allowed; the only test is 'defined'"),
        ("{{ token is defined(1) }}", "the test 'defined' takes no arguments"),
    ],
)
def test_filters_and_tests_outside_the_allowlist_are_refused(source: str, expected: str) -> None:
    assert expected in refusal(source)


@pytest.mark.parametrize(
    "source",
    [
        "{{ token|tojson|tojson|tojson|tojson }}",
        "{{ token | default(apiURL | upper | lower | trim) }}",
        "{{ (token | upper | lower ~ apiURL) | trim | tojson }}",
    ],
)
def test_more_than_three_filters_in_one_expression_are_refused(source: str) -> None:
    assert "more than 3 filters applied in one expression" in refusal(source)


def test_three_filters_in_one_expression_and_more_across_expressions_are_allowed() -> None:
    assert render("{{ token|upper|lower|tojson }}") == '"tok-3f9a"'
    assert render("{{ token|upper|lower|trim }}{{ token|upper|lower|trim }}") == "tok-3f9a" * 2


@pytest.mark.parametrize(
    "source",
    [
        "{{ " + "not " * 40 + "token }}",
        "{{ " + "token or " * 40 + "token }}",
        "{{ " + "(" * 1000 + "token" + ")" * 1000 + " }}",
        "{% if token %}" * 40 + "x" + "{% endif %}" * 40,
    ],
)
def test_deep_nesting_is_refused(source: str) -> None:
    assert len(source) <= MAX_TEMPLATE
    assert "nests more than" in refusal(source)


@pytest.mark.parametrize("name", ACCOUNT_VARIABLES)
def test_account_variables_need_include_account_secrets(name: str) -> None:
    source = f"{{{{ token }}}} {{{{ {name} }}}}"
    message = refusal(source, key="OC_AUTHORIZATION")
    assert message == (
        f"key 'OC_AUTHORIZATION': uses {name}: set `includeAccountSecrets: true` to render account secrets"
    )
    assert "includeAccountSecrets: true" in refusal(f"{{{{ 'a' if {name} is defined }}}}")
    assert render(source, account=True) == f"tok-3f9a {VALUES[name]}"


def test_account_variables_may_be_missing_when_the_template_allows_for_it() -> None:
    source = "{{ userSecret | default('-') }}/{{ 'set' if organizationSecret is defined else 'unset' }}"
    assert render(source, {"token": "t"}, account=True) == "-/unset"
    assert render(source, account=True) == "user-secret-value/set"


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("line one\n{{ token ", "key 'k': line 2: syntax error: unexpected end of template"),
        ("{{ token }}\n\n{% if token %}", "key 'k': line 3: syntax error: Unexpected end of template"),
        ("{% nonsense %}", "key 'k': line 1: syntax error: Encountered unknown tag 'nonsense'"),
        ("{{ token }", "key 'k': line 1: syntax error: unexpected '}'"),
        ("{% endif %}", "key 'k': line 1: syntax error: Encountered unknown tag 'endif'"),
    ],
)
def test_syntax_errors_name_the_key_and_the_line(source: str, expected: str) -> None:
    message = refusal(source, key="k")
    assert message.startswith(expected)
    assert "\n" not in message  # no source line appended, as str(TemplateSyntaxError) would


def test_a_template_over_max_template_is_refused() -> None:
    compile_templates({"k": "x" * MAX_TEMPLATE}, include_account_secrets=False)
    message = refusal("x" * (MAX_TEMPLATE + 1), key="big")
    assert message == (
        f"key 'big': the template has {MAX_TEMPLATE + 1} characters, at most {MAX_TEMPLATE} are allowed"
    )


def test_more_than_max_keys_are_refused() -> None:
    data = {f"k{i}": "{{ token }}" for i in range(MAX_KEYS + 1)}
    data.pop("k0")
    assert len(compile_templates(data, include_account_secrets=False).keys) == MAX_KEYS
    data["k0"] = "{{ token }}"
    with pytest.raises(TemplateError) as caught:
        compile_templates(data, include_account_secrets=False)
    assert caught.value.message == f"{MAX_KEYS + 1} templated keys, at most {MAX_KEYS} are allowed"


def test_the_first_refused_key_is_named() -> None:
    with pytest.raises(TemplateError) as caught:
        compile_templates({"good": "{{ token }}", "bad": "{{ token[0] }}"}, include_account_secrets=False)
    assert caught.value.message.startswith("key 'bad': line 1: ")


# --- what is refused when rendering --------------------------------------------------------------

SECRET = "S3cr3t-" + "q" * 1000  # long enough for the size tests, recognisable in any message


def render_refusal(source: str, values: dict[str, str], *, key: str = "key") -> str:
    template = compile_templates({key: source}, include_account_secrets=True)
    with pytest.raises(TemplateError) as caught:
        template.render(values)
    error = caught.value
    # The values are secrets: not in the message, not in a chained exception either.
    for value in values.values():
        assert value not in error.message
        assert value not in repr(error)
    assert error.__cause__ is None
    assert error.__context__ is None
    return error.message


def test_output_up_to_max_rendered_renders_and_one_character_more_is_refused() -> None:
    exact = {**VALUES, "apiURL": "u" * (MAX_RENDERED - 1)}
    assert len(render("{{ apiURL }}x", exact)) == MAX_RENDERED
    message = render_refusal("{{ apiURL }}xy", exact, key="config.json")
    assert message == f"key 'config.json': the rendered value would exceed {MAX_RENDERED} characters"


def test_many_repetitions_of_a_long_value_are_refused() -> None:
    source = "{{ apiURL }}" * 100  # within MAX_NODES
    assert len(source) <= MAX_TEMPLATE
    message = render_refusal(source, {**VALUES, "apiURL": SECRET * 4})
    assert message == f"key 'key': the rendered value would exceed {MAX_RENDERED} characters"


def test_nested_tojson_of_a_large_value_is_refused() -> None:
    # 12 characters of JSON per astral character, then escaped twice more: far over the cap, and
    # refused by the filter that passes it, before the next one runs.
    value = "\U0001f600" * 6000 + SECRET
    message = render_refusal("{{ token | tojson | tojson | tojson }}", {**VALUES, "token": value})
    assert "the rendered value would exceed" in message


def test_a_long_concatenation_is_refused_before_it_is_built() -> None:
    source = "{{ " + " ~ ".join(["userSecret"] * 140) + " }}"  # within MAX_NODES
    assert len(source) <= MAX_TEMPLATE
    assert "would exceed" in render_refusal(source, {**VALUES, "userSecret": SECRET * 4})


def test_an_intermediate_value_over_the_cap_is_refused_even_if_unused() -> None:
    source = "{% if (token ~ token) | upper == 'x' %}yes{% endif %}"
    assert render(source) == ""
    big = {**VALUES, "token": SECRET * 40}
    assert "would exceed" in render_refusal(source, big)
    assert "would exceed" in render_refusal("{{ token | trim | lower }}", {**VALUES, "token": SECRET * 80})


@pytest.mark.parametrize(
    ("source", "error"),
    [
        ("{{ token }}", "UndefinedError"),
        ("{{ instanceName | upper }}", "UndefinedError"),
        ("{% if connectorKey %}x{% endif %}", "UndefinedError"),
        ("{{ 'x' if userSecret < 1 else 'y' }}", "TypeError"),
        ("{{ 1 in organizationSecret }}", "TypeError"),
    ],
)
def test_render_failures_name_the_key_and_the_exception_type_only(source: str, error: str) -> None:
    values = {"apiURL": SECRET, "userSecret": SECRET + "u", "organizationSecret": SECRET + "o"}
    message = render_refusal(source, values, key="OC_AUTHORIZATION")
    assert message == f"key 'OC_AUTHORIZATION': rendering failed ({error})"


def test_no_message_contains_a_value() -> None:
    values = {name: f"{SECRET}-{name}" for name in VARIABLES + ACCOUNT_VARIABLES}
    failing = [
        "{{ token }}" * 200,
        "{{ userSecret | tojson | tojson | tojson }}" * 70,
        "{{ token < 1 }}",
        "{{ token ~ organizationSecret ~ missing }}",
    ]
    for source in failing:
        try:
            compile_templates({"k": source}, include_account_secrets=True).render(values)
        except TemplateError as error:
            text = f"{error.message} {error!s} {error!r} {error.args}"
            assert not any(value in text for value in values.values())
            assert not any(value[:20] in text for value in values.values())
        else:  # every template above fails, at compile time or when rendering
            pytest.fail(f"{source[:40]!r} rendered")


# --- tenant-findings N2, N12, N16 ------------------------------------------------------------------


def test_a_template_of_more_parts_than_the_cap_is_refused_before_it_is_compiled() -> None:
    # N2: a 4 KiB `~` chain is about 2,000 parts; compiling 16 of them blocked the loop for 1.3 s.
    chain = "{{ " + " ~ ".join(["token"] * ((MAX_TEMPLATE - 6) // 8)) + " }}"
    assert len(chain) <= MAX_TEMPLATE
    message = refusal(chain)
    assert f"at most {MAX_NODES}" in message
    assert "parts" in message


def test_a_huge_number_is_refused_not_a_crash() -> None:
    # N12: a hex literal of 3,580 digits made Jinja's compiler raise ValueError (Python's 4,300-digit
    # limit on printing integers): no condition, a traceback every 60 s.
    message = refusal("{{ 0x" + "f" * 3580 + " }}")
    assert f"more than {MAX_INT_DIGITS} digits" in message
    assert render("{{ " + "9" * MAX_INT_DIGITS + " }}") == "9" * MAX_INT_DIGITS


def test_a_rendered_secret_over_the_api_servers_limit_is_an_invalid_spec() -> None:
    # N16: keys within every per-key cap (64 Ki characters; a character may be several bytes) made
    # a Secret the API server refuses at every write; now it is a TemplateError (InvalidSpec).
    from connector_operator.domain.tokensecret import TokenSecretSpec, Values, data

    big = {f"k{n}": "{{ userSecret }}" * 60 for n in range(MAX_KEYS)}
    template = compile_templates(big, include_account_secrets=True)
    wanted = TokenSecretSpec(sources=big, include_account_secrets=True, template=template)
    secret = "\u00e9" * 1000  # 2 bytes each in UTF-8: 60,000 characters a key, 120,000 bytes
    values = Values("tok", "1", "https://x", "closeio", "crm", user_secret=secret, organization_secret="o")
    with pytest.raises(TemplateError) as caught:
        data(wanted, values)
    assert f"at most {MAX_SECRET_BYTES}" in caught.value.message
    assert secret[:100] not in caught.value.message
