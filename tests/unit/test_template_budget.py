"""The templates' CPU budget and their memory per object (issue 20, tenant-findings N2)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from connector_operator.domain import sandbox
from connector_operator.domain.template import CpuBudget, TemplateBudgetExceeded
from connector_operator.domain.tokensecret import TemplateMemory, TokenSecretSpec, checked


def unique(source: str) -> str:
    """`source` under a comment no other test uses: compiled afresh, not taken from the cache."""
    return f"{{# {uuid.uuid4()} #}}{source}"


@pytest.fixture
def compiled_sources(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every template source compiled (or taken from the cache), in order."""
    seen: list[str] = []
    real = sandbox._compile

    def counting(source: str) -> Any:
        seen.append(source)
        return real(source)

    monkeypatch.setattr(sandbox, "_compile", counting)
    return seen


def test_the_budget_refuses_what_passes_it_and_names_no_value() -> None:
    budget = CpuBudget(0.010)
    budget.charge(0.006, "compiling key 'a'")
    with pytest.raises(TemplateBudgetExceeded) as caught:
        budget.charge(0.006, "compiling key 'b'")
    assert "10 ms of CPU" in caught.value.message
    assert "key 'b'" in caught.value.message


def test_compiling_stops_at_the_key_that_passes_the_budget(compiled_sources: list[str]) -> None:
    data = {key: unique("{{ token ~ instanceID }}") for key in ("a", "b", "c")}
    with pytest.raises(TemplateBudgetExceeded) as caught:
        sandbox.compile_templates(data, include_account_secrets=False, budget=CpuBudget(1e-9))
    assert "key 'a'" in caught.value.message
    assert compiled_sources == [data["a"]]  # b and c were not compiled
    assert data["a"] not in caught.value.message


def test_a_cached_compile_is_charged_what_it_cost_when_made() -> None:
    # Whether a set fits must not depend on what other objects compiled before: a template taken
    # from the cache costs nothing now, but counts what it cost.
    data = {"k": unique("{{ " + " ~ ".join(["token"] * 100) + " }}")}
    first = sandbox.compile_templates(data, include_account_secrets=False)
    assert first.cost > 0
    again = sandbox.compile_templates(data, include_account_secrets=False, budget=CpuBudget(first.cost))
    assert again.cost == first.cost
    with pytest.raises(TemplateBudgetExceeded):
        sandbox.compile_templates(data, include_account_secrets=False, budget=CpuBudget(first.cost / 2))


def test_rendering_is_charged_to_the_same_budget() -> None:
    template = sandbox.compile_templates({"k": "{{ token }}"}, include_account_secrets=False)
    values = {"token": "secret-token-value"}
    assert template.render(values, CpuBudget(1.0)) == {"k": "secret-token-value"}
    with pytest.raises(TemplateBudgetExceeded) as caught:
        template.render(values, CpuBudget(1e-9))
    assert "rendering key 'k'" in caught.value.message
    assert "secret-token-value" not in caught.value.message


def wanted(**sources: str) -> TokenSecretSpec:
    return TokenSecretSpec(sources=sources)


def test_a_generation_is_compiled_once_and_a_new_one_again(compiled_sources: list[str]) -> None:
    spec = wanted(AUTH=unique("Element {{ token }}"))
    first, memory = checked(spec, None, 1)
    assert first.template is not None
    assert memory == TemplateMemory(1)
    assert first.memory is memory  # rendering updates the object's own record
    assert len(compiled_sources) == 1
    later, same = checked(spec, memory, 1)
    assert same is memory
    assert later.template is None  # not compiled: rendering compiles if it must
    assert len(compiled_sources) == 1
    _, renewed = checked(spec, memory, 2)
    assert renewed == TemplateMemory(2)
    assert len(compiled_sources) == 2


def test_a_refusal_is_kept_for_the_generation(compiled_sources: list[str]) -> None:
    spec = wanted(AUTH=unique("{{ token.__class__ }}"))
    _, memory = checked(spec, None, 3)
    assert memory is not None
    assert memory.refusal is not None
    assert "is not allowed" in memory.refusal
    _, again = checked(spec, memory, 3)
    assert again is memory
    assert len(compiled_sources) == 1


def test_a_spec_without_templates_keeps_nothing(compiled_sources: list[str]) -> None:
    plain = TokenSecretSpec(type="Opaque", labels={"a": "b"})
    assert checked(plain, TemplateMemory(1), 2) == (plain, None)
    assert compiled_sources == []


def test_the_budget_is_a_named_constant_the_budgets_read_when_made(monkeypatch: pytest.MonkeyPatch) -> None:
    from connector_operator.domain import template

    assert template.TEMPLATE_CPU_SECONDS == 0.25
    monkeypatch.setattr(template, "TEMPLATE_CPU_SECONDS", 0.5)
    assert CpuBudget().seconds == 0.5


def test_the_crd_tells_tenants_the_budget() -> None:
    # `kubectl explain connectorinstance.spec.tokenSecret.template.data` names what the operator enforces.
    from connector_operator.api.tokensecret import TokenSecretTemplate
    from connector_operator.domain import template

    description = TokenSecretTemplate.model_fields["data"].description or ""
    assert f"at most {template.TEMPLATE_CPU_SECONDS * 1000:.0f} ms of CPU" in description
