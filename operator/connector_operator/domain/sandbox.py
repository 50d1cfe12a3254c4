"""Checking, compiling and rendering the templates of a Secret's extra keys, in a Jinja sandbox.

The language itself, its variables and limits, and `TemplateError` are domain/template.py's; this
module holds everything that imports Jinja, so that an operator whose objects have no template never
loads it (domain/tokensecret.py imports this module lazily). A template is checked once per generation
of its object (domain/tokensecret.py keeps the verdict) and rendered without letting the tenant run
code, read files or the environment, loop, or spend unbounded CPU or memory in the operator.

Why Jinja2 with an AST allowlist rather than Jinja2 alone or a home-made language: Jinja's syntax
is what tenants already know from Helm-like tools, and its parser gives us a typed tree
(`jinja2.nodes`) to check before anything runs. The sandbox (`ImmutableSandboxedEnvironment`) alone
blocks attribute tricks such as `''.__class__`, but still allows loops, ranges, string
multiplication and calls that can exhaust memory or CPU. So the tree is checked against a short
allowlist (text, the known variables, literals, `~`, a few filters, `is defined`, if/else,
comparisons and boolean logic); everything else is refused when the spec is read, with a message
naming the construct and the key. The sandbox stays underneath as a second wall, and the
environment has no globals, only the allowed filters and the one allowed test.

What bounds the cost of a template that passes the allowlist: no construct repeats (no loops, no
macros, no recursion), so the work is linear in the template, which is at most `MAX_TEMPLATE`
characters; nesting is capped so that neither Jinja's compiler nor Python's recurses deeply; every
filter refuses an input or an output longer than `MAX_RENDERED`; `~` is rewritten into a balanced
tree of length-checked joins, so no concatenation allocates beyond the cap; and the output is
pulled piece by piece with `Template.generate`, stopping as soon as a key passes `MAX_RENDERED`.
A whole set (16 keys) is bounded by a `CpuBudget` per object: each key's compile is charged what it
cost when made (cached or not), and each key's rendering what it costs.

The values are secrets: a failure while rendering is reported by key and exception type only,
raised outside the `except` block so that no chained exception (whose text might quote a value)
travels with it.
"""

from __future__ import annotations

import base64
import functools
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError, nodes
from jinja2 import Template as JinjaTemplate
from jinja2.filters import do_default, do_lower, do_trim, do_upper, do_urlencode
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.tests import test_defined
from jinja2.utils import htmlsafe_json_dumps
from jinja2.visitor import NodeTransformer

from connector_operator.domain.template import (
    ACCOUNT_VARIABLES,
    MAX_DEPTH,
    MAX_FILTER_CHAIN,
    MAX_INT_DIGITS,
    MAX_KEYS,
    MAX_NODES,
    MAX_RENDERED,
    MAX_TEMPLATE,
    VARIABLES,
    CpuBudget,
    TemplateError,
)

__all__ = ["SandboxedTemplate", "compile_templates"]

# Compiled templates by source, an extra that spares compiling a template many objects share. Nothing
# relies on it (a tenant can evict it): each object compiles once per generation (domain/tokensecret.py).
_CACHE_SIZE = 256

_ALL_VARIABLES = frozenset(VARIABLES + ACCOUNT_VARIABLES)

# Filter name -> how many positional arguments it may take. No keyword arguments anywhere: tojson's
# `indent=` alone would let a template ask json.dumps for an indentation of a billion spaces.
_FILTER_ARITY: Mapping[str, tuple[int, int]] = {
    "tojson": (0, 0),
    "b64encode": (0, 0),
    "upper": (0, 0),
    "lower": (0, 0),
    "trim": (0, 1),  # trim(chars)
    "default": (0, 2),  # default(value, boolean)
    "urlencode": (0, 0),
}
_TESTS = frozenset({"defined"})

# The node types a template may contain. Operand is the right-hand side of a Compare and appears
# nowhere else. Anything not listed (For, Macro, Call, Getattr, Getitem, arithmetic, Tuple/List/Dict,
# Include, Import, Extends, Block, Assign, With, FilterBlock, autoescape, ...) is refused.
_ALLOWED_NODES: tuple[type[nodes.Node], ...] = (
    nodes.Template,
    nodes.Output,
    nodes.TemplateData,
    nodes.Name,
    nodes.Const,
    nodes.Concat,
    nodes.Filter,
    nodes.Test,
    nodes.CondExpr,
    nodes.If,
    nodes.Compare,
    nodes.Operand,
    nodes.And,
    nodes.Or,
    nodes.Not,
)

# How a refused construct is named in a message: what the tenant wrote, not Jinja's class name alone.
_DESCRIPTIONS: Mapping[str, str] = {
    "For": "a '{% for %}' loop",
    "Macro": "a '{% macro %}'",
    "CallBlock": "a '{% call %}' block",
    "Call": "a function or method call",
    "Getattr": "attribute access ('.name')",
    "Getitem": "indexing or slicing ('[...]')",
    "Slice": "slicing ('[a:b]')",
    "Include": "'{% include %}'",
    "Import": "'{% import %}'",
    "FromImport": "'{% from ... import %}'",
    "Extends": "'{% extends %}'",
    "Block": "a '{% block %}'",
    "Assign": "'{% set %}'",
    "AssignBlock": "a '{% set %}' block",
    "With": "'{% with %}'",
    "FilterBlock": "a '{% filter %}' block",
    "Scope": "a scoped block such as '{% autoescape %}'",
    "ScopedEvalContextModifier": "'{% autoescape %}'",
    "EvalContextModifier": "an evaluation context change",
    "Tuple": "a tuple",
    "List": "a list",
    "Dict": "a dict",
    "Add": "the '+' operator",
    "Sub": "the '-' operator",
    "Mul": "the '*' operator",
    "Div": "the '/' operator",
    "FloorDiv": "the '//' operator",
    "Mod": "the '%' operator",
    "Pow": "the '**' operator",
    "Neg": "unary '-'",
    "Pos": "unary '+'",
}

# The internal filter `~` is rewritten into. Its name contains a space, which no filter name in a
# template can (the lexer reads names as identifiers), and the allowlist runs before the rewrite.
_JOIN = "~ bounded"


class _Overflow(Exception):
    """A value, intermediate or final, would pass MAX_RENDERED. Carries no text on purpose."""


class _Refused(Exception):
    """A refusal found in one template; the caller adds the key."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# --- the environment -----------------------------------------------------------------------------


def _b64encode(value: Any) -> str:
    return base64.b64encode(str(value).encode("utf-8")).decode("ascii")


def _tojson(value: Any) -> str:
    # Jinja's own HTML-safe dumps (`<`, `>`, `&`, `'` escaped as \u00XX), with sorted keys as
    # Jinja's `tojson` does; str() drops the Markup type so nothing downstream escapes again.
    return str(htmlsafe_json_dumps(value, sort_keys=True))


def _join(left: Any, right: Any) -> str:
    # Same conversion as Jinja's own `~` (str of each side), but the length is checked before the
    # new string is allocated.
    a, b = str(left), str(right)
    if len(a) + len(b) > MAX_RENDERED:
        raise _Overflow
    return a + b


def _bounded(function: Callable[..., Any]) -> Callable[..., Any]:
    """A filter that refuses an input or an output longer than MAX_RENDERED, so that a chain of
    filters never works on, or hands on, more than a few times the per-key cap."""

    # No functools.wraps: it would copy a `jinja_pass_arg` marker, if a filter had one, and make
    # Jinja pass a context the wrapper does not expect.
    def bounded(value: Any, *args: Any) -> Any:
        if isinstance(value, str) and len(value) > MAX_RENDERED:
            raise _Overflow
        result = function(value, *args)
        if isinstance(result, str):
            if len(result) > MAX_RENDERED:
                raise _Overflow
            result = str(result)  # a plain str, never Markup
        return result

    return bounded


def _environment() -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(
        autoescape=False,  # the output is a Secret value, not HTML
        undefined=StrictUndefined,  # a missing value is an error, never an empty string
        keep_trailing_newline=True,  # the value is exactly what the tenant wrote, newline included
    )
    # Only what the allowlist lets a template name: no `range`, `lipsum`, `cycler`, `dict`, ...
    env.globals.clear()
    env.filters = {
        "tojson": _bounded(_tojson),
        "b64encode": _bounded(_b64encode),
        "upper": _bounded(do_upper),
        "lower": _bounded(do_lower),
        "trim": _bounded(do_trim),
        "default": _bounded(do_default),
        "urlencode": _bounded(do_urlencode),
        _JOIN: _join,
    }
    env.tests = {"defined": test_defined}
    return env


_ENV = _environment()


# --- checking ------------------------------------------------------------------------------------


def _describe(node: nodes.Node) -> str:
    name = type(node).__name__
    description = _DESCRIPTIONS.get(name)
    return f"{description} ({name})" if description else name


def _line(node: nodes.Node) -> str:
    # A few nodes (the Scope around `{% autoescape %}`) carry no line of their own; their first
    # child does.
    for candidate in (node, *node.iter_child_nodes()):
        lineno = getattr(candidate, "lineno", None)
        if lineno:
            return f"line {lineno}: "
    return ""


def _check(node: nodes.Node, depth: int, names: set[str]) -> int:
    """Refuse anything outside the allowlist; collect the variable names used. Returns the longest
    chain of filters in this subtree, so that the caller can cap it per expression."""
    line = _line(node)
    if not isinstance(node, _ALLOWED_NODES):
        raise _Refused(f"{line}{_describe(node)} is not allowed in a Secret template")
    if depth > MAX_DEPTH:
        raise _Refused(f"{line}the template nests more than {MAX_DEPTH} levels deep")
    _check_node(node, line, names)
    chain = max((_check(child, depth + 1, names) for child in node.iter_child_nodes()), default=0)
    if isinstance(node, nodes.Filter):
        chain += 1
        if chain > MAX_FILTER_CHAIN:
            raise _Refused(f"{line}more than {MAX_FILTER_CHAIN} filters applied in one expression")
    # A chain ends at a statement: filters in different `{{ }}` or conditions are not one chain.
    return 0 if isinstance(node, nodes.Stmt | nodes.Template) else chain


def _check_node(node: nodes.Node, line: str, names: set[str]) -> None:
    """The checks of one allowed node on its own, before its children: a name, a literal, or a
    filter or test applied."""
    if isinstance(node, nodes.Name):
        _check_name(node, line, names)
    elif isinstance(node, nodes.Const):
        if node.value is not None and not isinstance(node.value, str | int | float | bool):
            raise _Refused(f"{line}a literal of type {type(node.value).__name__} is not allowed")
        if isinstance(node.value, int) and node.value.bit_length() > MAX_INT_DIGITS * 4:
            raise _Refused(f"{line}a number of more than {MAX_INT_DIGITS} digits is not allowed")
    elif isinstance(node, nodes.Filter | nodes.Test):
        _check_applied(node, line)


def _check_name(node: nodes.Name, line: str, names: set[str]) -> None:
    if node.ctx != "load":
        raise _Refused(f"{line}assigning to {node.name!r} is not allowed in a Secret template")
    if node.name not in _ALL_VARIABLES:
        known = ", ".join(VARIABLES + ACCOUNT_VARIABLES)
        raise _Refused(f"{line}unknown variable {node.name!r}; the variables are {known}")
    names.add(node.name)


def _check_applied(node: nodes.Filter | nodes.Test, line: str) -> None:
    """A filter or test: an allowed one, on an operand, with positional arguments only and as many
    as it takes."""
    kind = "filter" if isinstance(node, nodes.Filter) else "test"
    low, high = _arity(node, line)
    if node.node is None:  # only a {% filter %} block has no operand; refused above anyway
        raise _Refused(f"{line}a {kind} without an operand is not allowed")
    if node.kwargs or node.dyn_args is not None or node.dyn_kwargs is not None:
        raise _Refused(f"{line}the {kind} {node.name!r} takes no keyword or * arguments")
    if not low <= len(node.args) <= high:
        takes = "no arguments" if high == 0 else f"at most {high} argument{'s' * (high > 1)}"
        raise _Refused(f"{line}the {kind} {node.name!r} takes {takes}")


def _arity(node: nodes.Filter | nodes.Test, line: str) -> tuple[int, int]:
    """How many positional arguments an allowed filter or test takes; refuses any other."""
    if isinstance(node, nodes.Filter):
        if node.name not in _FILTER_ARITY:
            allowed = ", ".join(_FILTER_ARITY)
            raise _Refused(f"{line}the filter {node.name!r} is not allowed; the filters are {allowed}")
        return _FILTER_ARITY[node.name]
    if node.name not in _TESTS:
        raise _Refused(f"{line}the test {node.name!r} is not allowed; the only test is 'defined'")
    return 0, 0


class _BoundConcat(NodeTransformer):
    """Rewrite `a ~ b ~ c ~ d` into join(join(a, b), join(c, d)) with the length-checked join.

    Balanced rather than left-deep: Python evaluates one subtree at a time, so at most one pending
    result per level (log2 of the operands, each within the cap) is alive, and the generated code
    nests log2(n) calls deep, not n (a template may hold hundreds of `~`)."""

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        return self._balanced(list(node.nodes), node.lineno)

    def _balanced(self, parts: list[nodes.Expr], lineno: int) -> nodes.Expr:
        if len(parts) == 1:
            return parts[0]
        middle = len(parts) // 2
        left = self._balanced(parts[:middle], lineno)
        right = self._balanced(parts[middle:], lineno)
        return nodes.Filter(left, _JOIN, [right], [], None, None, lineno=lineno)


@dataclass(frozen=True)
class _Compiled:
    source: str
    template: JinjaTemplate = field(compare=False, repr=False)
    names: frozenset[str]
    cost: float = field(default=0.0, compare=False)  # CPU seconds the compile took, charged at each use


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _compile(source: str) -> _Compiled:
    """Parse, check and compile one template, with the CPU it took; raises _Refused. Independent
    of the key and of includeAccountSecrets (the caller checks those): one entry serves every spec."""
    started = time.thread_time()
    if len(source) > MAX_TEMPLATE:
        raise _Refused(f"the template has {len(source)} characters, at most {MAX_TEMPLATE} are allowed")
    try:
        tree = _ENV.parse(source)
    except TemplateSyntaxError as exc:
        # Jinja's message and line only: its str() would append the offending source line.
        raise _Refused(f"line {exc.lineno}: syntax error: {exc.message or 'invalid template'}") from None
    except RecursionError:  # e.g. thousands of nested parentheses
        raise _Refused(f"the template nests more than {MAX_DEPTH} levels deep") from None
    except Exception as exc:  # the lexer giving up on a literal, say: the type only, never the text
        raise _Refused(f"the template cannot be parsed ({type(exc).__name__})") from None
    parts = sum(1 for _ in tree.find_all(nodes.Node))
    if parts > MAX_NODES:
        raise _Refused(f"the template has {parts} parts (names, literals, operators), at most {MAX_NODES}")
    names: set[str] = set()
    _check(tree, 0, names)
    tree = _BoundConcat().visit(tree)
    tree.set_environment(_ENV)
    try:
        template = _ENV.from_string(tree)
    except TemplateSyntaxError as exc:  # Jinja's compile-time checks; none known to pass the allowlist
        raise _Refused(f"line {exc.lineno}: {exc.message or 'invalid template'}") from None
    except Exception as exc:  # Jinja or Python's compiler giving up (as _render): the type only
        raise _Refused(f"the template cannot be compiled ({type(exc).__name__})") from None
    return _Compiled(source, template, frozenset(names), time.thread_time() - started)


# --- the API -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SandboxedTemplate:
    """The checked templates of one spec, by Secret key, in the spec's order: domain/template.py's
    `SecretTemplate`, rendered in the sandbox."""

    include_account_secrets: bool
    _compiled: tuple[tuple[str, _Compiled], ...] = field(default=(), repr=False)

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(key for key, _ in self._compiled)

    @property
    def cost(self) -> float:
        return sum(compiled.cost for _, compiled in self._compiled)

    def render(self, values: Mapping[str, str], budget: CpuBudget | None = None) -> dict[str, str]:
        """Every key rendered over `values` (within `budget`); TemplateError names the first that fails."""
        allowed = VARIABLES + ACCOUNT_VARIABLES if self.include_account_secrets else VARIABLES
        # Only the allowed names reach Jinja: without the flag the account secrets are not there at all.
        context = {name: values[name] for name in allowed if name in values}
        budget = budget or CpuBudget(float("inf"))
        rendered: dict[str, str] = {}
        for key, compiled in self._compiled:
            with budget.measured(f"rendering key {key!r}"):
                rendered[key] = _render(key, compiled.template, context)
        return rendered


def _render(key: str, template: JinjaTemplate, context: Mapping[str, str]) -> str:
    failure: str | None = None
    parts: list[str] = []
    size = 0
    chunks: Iterator[str] = template.generate(context)
    try:
        for chunk in chunks:
            size += len(chunk)
            if size > MAX_RENDERED:
                raise _Overflow
            parts.append(chunk)
    except _Overflow:
        failure = f"key {key!r}: the rendered value would exceed {MAX_RENDERED} characters"
    except Exception as exc:  # anything Jinja or a filter raises: its text may quote a value
        failure = f"key {key!r}: rendering failed ({type(exc).__name__})"
    finally:
        close = getattr(chunks, "close", None)  # stop the generator now, not at garbage collection
        if close is not None:
            close()
    if failure is not None:
        # Raised here, outside the except blocks, so that the original exception is not chained.
        raise TemplateError(failure)
    return "".join(parts)


def compile_templates(
    data: Mapping[str, str], *, include_account_secrets: bool, budget: CpuBudget | None = None
) -> SandboxedTemplate:
    """Check and compile every key's template (within `budget`); TemplateError names the first refused."""
    if len(data) > MAX_KEYS:
        raise TemplateError(f"{len(data)} templated keys, at most {MAX_KEYS} are allowed")
    budget = budget or CpuBudget(float("inf"))
    compiled: list[tuple[str, _Compiled]] = []
    for key, source in data.items():
        try:
            template = _compile(source)
        except _Refused as exc:
            message = exc.message
        else:
            budget.charge(template.cost, f"compiling key {key!r}")
            account = sorted(template.names.intersection(ACCOUNT_VARIABLES))
            if not account or include_account_secrets:
                compiled.append((key, template))
                continue
            message = (
                f"uses {', '.join(account)}: set `includeAccountSecrets: true` to render account secrets"
            )
        raise TemplateError(f"key {key!r}: {message}")
    return SandboxedTemplate(include_account_secrets, tuple(compiled))
