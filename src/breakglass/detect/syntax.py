"""The CEL grammar, parsed and compiled into Python closures that compute with exact numbers.

``compile_expression(source)`` -> ``Program`` (its free ``variables``, and ``run(variables)``). The
grammar is CEL's (https://github.com/google/cel-spec, ``doc/langdef.md``)::

    Expr    = Or ["?" Or ":" Expr]         Or  = And {"||" And}       And = Rel {"&&" Rel}
    Rel     = Add {("<"|"<="|">"|">="|"=="|"!="|"in") Add}          Add = Mul {("+"|"-") Mul}
    Mul     = Unary {("*"|"/"|"%") Unary}  Unary = {"!"|"-"} Member
    Member  = Primary {"." IDENT ["(" args ")"] | "[" Expr "]"}
    Primary = IDENT ["(" args ")"] | "(" Expr ")" | "[" list "]" | "{" map "}" | literal

Semantics follow CEL (strict types: no string + number, no bool arithmetic; ``&&``/``||`` absorb an
error when the other side decides; macros bind their variable) with one deliberate difference: numbers
are exact (see ``expr.py``). Runtime problems raise ``EvalError`` with CEL's wording
(``no such overload``, ``no such key``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from breakglass.config.refs import closest
from breakglass.detect.lexer import tokenize
from breakglass.detect.operators import BINARY, FUNCTIONS, EvalError, is_number, kind_of, overload

__all__ = ["MACROS", "EvalError", "Program", "compile_expression"]


Env = Mapping[str, Any]
Node = Callable[[Env], Any]

MACROS = frozenset({"all", "exists", "exists_one", "map", "filter"})
"""Methods that bind a variable: ``xs.exists(x, x > 0)``."""


@dataclass
class Program:
    """A compiled expression: the names it reads and how to compute it."""

    source: str
    variables: frozenset[str]
    functions: frozenset[str]
    node: Node

    def run(self, variables: Env) -> Any:
        try:
            return self.node(variables)
        except EvalError:
            raise
        except (TypeError, ValueError, OverflowError, ZeroDivisionError, RecursionError) as exc:
            raise EvalError(str(exc)) from None


class _Parser:
    def __init__(self, source: str, *, strict: bool = False) -> None:
        self.strict = strict
        self.tokens = tokenize(source)
        self.i = 0
        self.free: set[str] = set()
        self.functions: set[str] = set()
        self.bound: list[str] = []

    # helpers
    def peek(self, text: str | None = None) -> bool:
        token = self.tokens[self.i]
        return token.kind == "op" and token.text == text if text is not None else False

    def take(self, text: str) -> bool:
        if self.peek(text):
            self.i += 1
            return True
        return False

    def expect(self, text: str) -> None:
        if not self.take(text):
            token = self.tokens[self.i]
            found = repr(token.text) if token.kind != "end" else "the end"
            raise ValueError(f"expected {text!r} at {token.at}, found {found}")

    # grammar
    def parse(self) -> Node:
        node = self.expr()
        token = self.tokens[self.i]
        if token.kind != "end":
            raise ValueError(f"unexpected {token.text!r} at {token.at}")
        return node

    def expr(self) -> Node:
        condition = self.or_()
        if not self.take("?"):
            return condition
        yes = self.or_()
        self.expect(":")
        no = self.expr()

        def choose(env: Env) -> Any:
            picked = condition(env)
            if not isinstance(picked, bool):
                raise overload("_?_:_", picked)
            return yes(env) if picked else no(env)

        return choose

    def or_(self) -> Node:
        node = self.and_()
        while self.take("||"):
            node = _logical(node, self.and_(), decides=True, op="_||_", strict=self.strict)
        return node

    def and_(self) -> Node:
        node = self.relation()
        while self.take("&&"):
            node = _logical(node, self.relation(), decides=False, op="_&&_", strict=self.strict)
        return node

    def relation(self) -> Node:
        return self._left_assoc(("<", "<=", ">", ">=", "==", "!=", "in"), self.addition)

    def addition(self) -> Node:
        return self._left_assoc(("+", "-"), self.multiplication)

    def multiplication(self) -> Node:
        return self._left_assoc(("*", "/", "%"), self.unary)

    def _left_assoc(self, operators: tuple[str, ...], operand: Callable[[], Node]) -> Node:
        """``operand (op operand)*`` for one precedence level, folded to the left."""
        node = operand()
        while True:
            token = self.tokens[self.i]
            if token.kind == "op" and token.text in operators:
                self.i += 1
                node = _binary(BINARY[token.text], node, operand())
            else:
                return node

    def unary(self) -> Node:
        if self.take("!"):
            inner = self.unary()

            def negate(env: Env) -> bool:
                value = inner(env)
                if not isinstance(value, bool):
                    raise overload("!_", value)
                return not value

            return negate
        if self.take("-"):
            token = self.tokens[self.i]
            if token.kind == "number":  # a negative literal stays a literal
                self.i += 1
                value = -token.value
                return self.member(lambda env: value)
            inner = self.unary()

            def minus(env: Env) -> Any:
                value = inner(env)
                if not is_number(value):
                    raise overload("-_", value)
                return -value

            return minus
        return self.member(self.primary())

    def member(self, node: Node) -> Node:
        while True:
            if self.take("."):
                token = self.tokens[self.i]
                if token.kind != "ident":
                    raise ValueError(f"expected a field name at {token.at}")
                self.i += 1
                if self.peek("("):
                    node = self.method(node, token.text, token.at)
                else:
                    node = _select(node, token.text)
            elif self.take("["):
                index = self.expr()
                self.expect("]")
                node = _index(node, index)
            else:
                return node

    def method(self, target: Node, name: str, at: int) -> Node:
        self.expect("(")
        if name in MACROS:
            token = self.tokens[self.i]
            if token.kind != "ident":
                raise ValueError(f"{name}() takes a variable name first, at {token.at}")
            self.i += 1
            variable = token.text
            self.bound.append(variable)
            try:
                bodies = []
                while self.take(","):
                    bodies.append(self.expr())
            finally:
                self.bound.pop()
            self.expect(")")
            return _macro(name, target, variable, bodies, strict=self.strict)
        args = self.arguments()
        if name not in FUNCTIONS:
            raise ValueError(f"unknown function {name!r} at {at} (known: {', '.join(sorted(FUNCTIONS))})")
        self.functions.add(name)
        return _call(FUNCTIONS[name], [target, *args])

    def arguments(self) -> list[Node]:
        args: list[Node] = []
        if not self.take(")"):
            args.append(self.expr())
            while self.take(","):
                args.append(self.expr())
            self.expect(")")
        return args

    def primary(self) -> Node:
        token = self.tokens[self.i]
        self.i += 1
        if token.kind in ("number", "string", "literal"):
            value = token.value
            return lambda env: value
        if token.kind == "ident":
            name = token.text
            if self.take("("):
                if name == "has":
                    return self.has()
                args = self.arguments()
                if name not in FUNCTIONS:
                    known = ", ".join(sorted({*FUNCTIONS, "has"}))
                    raise ValueError(f"unknown function {name!r} at {token.at} (known: {known})")
                self.functions.add(name)
                return _call(FUNCTIONS[name], args)
            if name not in self.bound:
                self.free.add(name)
            return _variable(name)
        if token.kind == "op" and token.text == "(":
            inner = self.expr()
            self.expect(")")
            return inner
        if token.kind == "op" and token.text == "[":
            items: list[Node] = []
            while not self.take("]"):
                items.append(self.expr())
                if not self.take(","):
                    self.expect("]")
                    break
            return lambda env: [item(env) for item in items]
        if token.kind == "op" and token.text == "{":
            pairs: list[tuple[Node, Node]] = []
            while not self.take("}"):
                key = self.expr()
                self.expect(":")
                pairs.append((key, self.expr()))
                if not self.take(","):
                    self.expect("}")
                    break
            return lambda env: {k(env): v(env) for k, v in pairs}
        found = repr(token.text) if token.kind != "end" else "the end"
        raise ValueError(f"unexpected {found} at {token.at}")

    def has(self) -> Node:
        """``has(a.b.f)``: whether the map ``a.b`` has the field ``f`` (CEL's presence test)."""
        node = self.primary()
        owner: Node | None = None
        field = ""
        while True:
            if self.take("."):
                token = self.tokens[self.i]
                if token.kind != "ident":
                    raise ValueError(f"expected a field name at {token.at}")
                self.i += 1
                owner, field, node = node, token.text, _select(node, token.text)
            elif self.take("["):
                index = self.expr()
                self.expect("]")
                owner, node = None, _index(node, index)
            else:
                break
        self.expect(")")
        if owner is None:
            raise ValueError("has() takes a field selection, e.g. has(args.amount)")
        target = owner

        def present(env: Env) -> bool:
            value = target(env)
            if not isinstance(value, Mapping):
                raise overload("has", value)
            return field in value

        return present


def _variable(name: str) -> Node:
    def read(env: Env) -> Any:
        try:
            return env[name]
        except KeyError:
            raise EvalError(f"undeclared reference to {name!r}") from None

    return read


def _select(target: Node, field: str) -> Node:
    def select(env: Env) -> Any:
        value = target(env)
        if isinstance(value, Mapping):
            try:
                return value[field]
            except KeyError:
                raise EvalError(f"no such key: {field!r} {closest(field, [str(k) for k in value])}") from None
        raise EvalError(f"no such field {field!r} on a {kind_of(value)}")

    return select


def _index(target: Node, index: Node) -> Node:
    def item(env: Env) -> Any:
        value, key = target(env), index(env)
        if isinstance(value, list):
            if not is_number(key) or key != int(key):
                raise overload("_[_]", value, key)
            position = int(key)
            if not 0 <= position < len(value):
                raise EvalError(f"index out of bounds: {position}")
            return value[position]
        if isinstance(value, Mapping):
            try:
                return value[key]
            except (KeyError, TypeError):
                raise EvalError(f"no such key: {key!r}") from None
        raise overload("_[_]", value, key)

    return item


def _binary(run: Callable[[Any, Any], Any], left: Node, right: Node) -> Node:
    return lambda env: run(left(env), right(env))


def _call(function: Callable[..., Any], args: Sequence[Node]) -> Node:
    if len(args) == 1:
        (only,) = args
        return lambda env: function(only(env))
    if len(args) == 2:
        first, second = args
        return lambda env: function(first(env), second(env))
    return lambda env: function(*(arg(env) for arg in args))


def _logical(left: Node, right: Node, *, decides: bool, op: str, strict: bool = False) -> Node:
    """``&&`` (``decides=False``: a false side decides) and ``||`` (a true side decides), with CEL's
    absorption: an error or a non-boolean on one side is forgiven when the other side decides.
    ``strict`` (``breakglass check``): an error of the left side is never forgiven."""

    def run(env: Env) -> bool:
        try:
            a = left(env)
        except EvalError as exc:
            if strict:
                raise
            a = exc
        if a is decides:
            return bool(decides)
        b = right(env)
        if b is decides:
            return bool(decides)
        if isinstance(a, EvalError):
            raise a
        if not (isinstance(a, bool) and isinstance(b, bool)):
            raise overload(op, a, b)
        return not decides

    return run


def _items(value: Any, name: str) -> list[Any]:
    if isinstance(value, list):
        return value
    if isinstance(value, Mapping):
        return list(value)
    raise overload(name, value)


def _macro(name: str, target: Node, variable: str, bodies: list[Node], *, strict: bool = False) -> Node:
    arity = {"all": (1,), "exists": (1,), "exists_one": (1,), "filter": (1,), "map": (1, 2)}[name]
    if len(bodies) not in arity:
        raise ValueError(f"{name}() takes a variable and {' or '.join(map(str, arity))} expression(s)")

    def scopes(env: Env) -> Iterator[dict[str, Any]]:
        for item in _items(target(env), name):
            scope = dict(env)
            scope[variable] = item
            yield scope

    def truth(body: Node, scope: Env) -> bool:
        value = body(scope)
        if not isinstance(value, bool):
            raise overload(name, value)
        return value

    predicate = bodies[0]
    if name in ("all", "exists"):
        decides = name == "exists"

        def quantify(env: Env) -> bool:
            error: EvalError | None = None
            for scope in scopes(env):
                try:
                    if truth(predicate, scope) is decides:
                        return decides
                except EvalError as exc:
                    if strict:
                        raise
                    error = error or exc
            if error is not None:
                raise error
            return not decides

        return quantify
    if name == "exists_one":
        return lambda env: sum(truth(predicate, scope) for scope in scopes(env)) == 1
    if name == "filter":
        return lambda env: [scope[variable] for scope in scopes(env) if truth(predicate, scope)]
    if len(bodies) == 1:
        return lambda env: [predicate(scope) for scope in scopes(env)]
    transform = bodies[1]
    return lambda env: [transform(scope) for scope in scopes(env) if truth(predicate, scope)]


def compile_expression(source: str, *, strict: bool = False) -> Program:
    """Parse ``source``; a syntax error or an unknown function is a ``ValueError`` saying where.
    ``strict``: no error is forgiven by the other side of ``&&``/``||`` or by a macro's other
    elements; ``breakglass check`` evaluates so on sample values, where a false side proves nothing."""
    parser = _Parser(source, strict=strict)
    node = parser.parse()
    return Program(source, frozenset(parser.free), frozenset(parser.functions), node)
