"""The expression evaluator the validation tests rely on (hclexpr.py): brackets, colons and
question marks inside strings or nested brackets must not split an expression, or a validation
would be read wrongly and its test would pass or fail for the wrong reason."""

from __future__ import annotations

import pytest

from hclexpr import _matching, _split_top, evaluate


@pytest.mark.parametrize(
    "expr, char, at",
    [
        ('a ? b : c', "?", 2),
        ('"x?y" ? b : c', "?", 6),
        ('f(a ? b : c) ? d : e', "?", 13),
        ('[for x in xs : x] : y', ":", 18),
        ('"a\\"?" ? 1 : 2', "?", 7),
        ('f(a, b)', "?", -1),
    ],
)
def test_split_top_skips_strings_and_brackets(expr, char, at):
    assert _split_top(expr, char) == at


@pytest.mark.parametrize(
    "expr, open_at, close_at",
    [("(a)", 0, 2), ("f(g(x), [1, 2])", 1, 14), ('f(")", h(1))', 1, 11), ("[a, {b}]", 0, 7)],
)
def test_matching_finds_the_closing_bracket(expr, open_at, close_at):
    assert _matching(expr, open_at) == close_at


def test_matching_refuses_unbalanced_brackets():
    with pytest.raises(ValueError, match="unbalanced"):
        _matching("f(a, (b)", 1)


@pytest.mark.parametrize(
    "expr, variables, expected",
    [
        ('${var.x ? "a:b" : "[c"}', {"x": True}, "a:b"),
        ('${var.x ? "a:b" : "[c"}', {"x": False}, "[c"),
        ('${alltrue([for v in var.xs : can(regex("^[a-z]+:[0-9]$", v))])}', {"xs": ["ab:1", "c:2"]}, True),
        ('${alltrue([for v in var.xs : can(regex("^[a-z]+:[0-9]$", v))])}', {"xs": ["ab:1", "c:x"]}, False),
        ("${min(var.d * 86400, 31536000)}", {"d": 400}, 31536000),
    ],
)
def test_evaluate(expr, variables, expected):
    assert evaluate(expr, variables) == expected
