"""Evaluates the small subset of Terraform expressions our variable validations use, so a test can
feed a validation good and bad values and see what `terraform plan` would answer, without a
terraform binary. The expression is translated to Python: literals, `var.X`, && || !, comparisons,
arithmetic, one level of `cond ? a : b`, `[for x in xs : expr]` and the functions listed in FUNCTIONS.
Anything else raises, so a validation this cannot read fails its test instead of passing unread.
"""

from __future__ import annotations

import ipaddress
import math
import re

from conftest import unquote


def _regex(pattern: str, value: str):
    if value is None:
        raise ValueError("regex of null")
    match = re.search(pattern, value)
    if not match:
        raise ValueError(f"{pattern!r} does not match {value!r}")
    return match.group(0)


def _cidrhost(cidr: str, n: int) -> str:
    # Terraform's cidrhost needs a prefix length; a bare address is an error.
    if "/" not in cidr:
        raise ValueError(f"{cidr!r} is not a CIDR")
    return str(ipaddress.ip_network(cidr, strict=False)[n])


def _length(value) -> int:
    if value is None:
        raise ValueError("length of null")
    return len(value)


def _can(thunk) -> bool:
    try:
        thunk()
        return True
    except Exception:  # noqa: BLE001 - can() is true exactly when the expression does not fail
        return False


FUNCTIONS = {
    "length": _length,
    "can": _can,
    "regex": _regex,
    "startswith": lambda s, p: s.startswith(p),
    "endswith": lambda s, p: s.endswith(p),
    "strcontains": lambda s, p: p in s,
    "alltrue": lambda xs: all(xs),
    "anytrue": lambda xs: any(xs),
    "distinct": lambda xs: list(dict.fromkeys(xs)),
    "contains": lambda xs, x: x in xs,
    "cidrhost": _cidrhost,
    "floor": math.floor,
    "min": min,
    "join": lambda sep, xs: sep.join(xs),
    "concat": lambda *xs: [x for part in xs for x in part],
}


def _scan(expr: str, start: int = 0):
    """(index, char, depth) of each character from `start` outside string literals; a closing
    bracket counts at the depth it returns to, an opening one at the depth it leaves."""
    depth, quote, i = 0, False, start
    while i < len(expr):
        c = expr[i]
        if quote:
            if c == "\\":
                i += 2
                continue
            if c == '"':
                quote = False
        elif c == '"':
            quote = True
        else:
            if c in ")]}":
                depth -= 1
            yield i, c, depth
            if c in "([{":
                depth += 1
        i += 1


def _split_top(expr: str, char: str) -> int:
    """Index of the first `char` outside quotes and brackets, or -1."""
    return next((i for i, c, depth in _scan(expr) if c == char and depth == 0), -1)


def _matching(expr: str, open_at: int) -> int:
    """Index of the bracket closing the one at `open_at`."""
    for i, c, depth in _scan(expr, open_at):
        if c in ")]}" and depth == 0:
            return i
    raise ValueError(f"unbalanced brackets in {expr!r}")


def to_python(expr: str) -> str:
    expr = expr.strip()
    if expr.startswith("${") and expr.endswith("}"):
        expr = expr[2:-1].strip()
    q = _split_top(expr, "?")
    if q >= 0:
        rest = expr[q + 1 :]
        c = _split_top(rest, ":")
        if c < 0:
            raise ValueError(f"ternary without ':' in {expr!r}")
        return f"(({to_python(rest[:c])}) if ({to_python(expr[:q])}) else ({to_python(rest[c + 1:])}))"
    # [for x in xs : body]
    out, i = [], 0
    while i < len(expr):
        if expr.startswith("[for ", i):
            end = _matching(expr, i)
            inner = expr[i + 5 : end]
            head, _, body = inner.partition(" : ")
            name, _, seq = head.partition(" in ")
            out.append(f"[({to_python(body)}) for {name.strip()} in ({to_python(seq)})]")
            i = end + 1
            continue
        if expr.startswith("can(", i):
            end = _matching(expr, i + 3)
            out.append(f"can(lambda: ({to_python(expr[i + 4:end])}))")
            i = end + 1
            continue
        if expr[i] == '"':
            j = i + 1
            while expr[j] != '"':
                j += 2 if expr[j] == "\\" else 1
            literal = expr[i : j + 1]
            if "${" in literal:
                raise ValueError(f"string templates are not supported: {literal}")
            out.append(literal)
            i = j + 1
            continue
        out.append(expr[i])
        i += 1
    text = "".join(out)
    text = text.replace("&&", " and ").replace("||", " or ")
    text = re.sub(r"!(?!=)", " not ", text)
    text = re.sub(r"\bnull\b", "None", text)
    text = re.sub(r"\btrue\b", "True", text)
    text = re.sub(r"\bfalse\b", "False", text)
    text = re.sub(r"\bvar\.([a-z0-9_]+)", r'var["\1"]', text)
    return text


def evaluate(expr: str, variables: dict):
    code = to_python(expr)
    names = re.findall(r"\b([a-z_][a-z0-9_]*)\s*\(", code)
    unknown = {n for n in names if n not in FUNCTIONS and n not in ("lambda", "if", "else", "in", "for", "and", "or", "not")}
    if unknown:
        raise ValueError(f"unsupported functions {sorted(unknown)} in {expr!r}")
    # Globals, not locals: the lambdas can() receives must see them.
    return eval(code, {"__builtins__": {}, **FUNCTIONS, "var": variables})  # noqa: S307 - our own .tf


def validation_passes(variable: dict, name: str, value) -> bool:
    """Whether every validation block of `variable` accepts `value`, as terraform would decide."""
    rules = variable.get("validation", [])
    assert rules, f"variable {name} has no validation"
    return all(evaluate(rule["condition"], {name: value}) is True for rule in rules)


__all__ = ["evaluate", "validation_passes", "unquote"]
