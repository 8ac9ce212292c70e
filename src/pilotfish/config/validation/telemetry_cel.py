"""A CEL syntax check for Telemetry access-log filters (Istio runs cel-go's Parse on them).

Only the grammar is checked (github.com/google/cel-spec langdef.md): a filter that does not
parse is rejected at apply time; what the expression means is up to the proxy.
"""

from __future__ import annotations

import re

_RESERVED = {
    "as", "break", "const", "continue", "else", "for", "function", "if", "import",
    "let", "loop", "package", "namespace", "return", "var", "void", "while",
}  # fmt: skip
_TOKEN = re.compile(
    r"""
    (?P<ws>[ \t\n\r\f]+|//[^\n]*)
  | (?P<raw>(?:[rR][bB]?|[bB][rR])("{3}.*?"{3}|'{3}.*?'{3}|"[^"\n]*"|'[^'\n]*'))
  | (?P<string>[bB]?("{3}(?:\\.|[^\\])*?"{3}|'{3}(?:\\.|[^\\])*?'{3}|"(?:\\.|[^"\\\n])*"|'(?:\\.|[^'\\\n])*'))
  | (?P<number>0[xX][0-9a-fA-F]+[uU]?|(?:[0-9]+\.[0-9]+(?:[eE][+-]?[0-9]+)?|\.[0-9]+(?:[eE][+-]?[0-9]+)?|[0-9]+[eE][+-]?[0-9]+)|[0-9]+[uU]?)
  | (?P<ident>[_a-zA-Z][_a-zA-Z0-9]*)
  | (?P<op>\|\||&&|==|!=|<=|>=|[-+*/%!<>?:.,()\[\]{}])
    """,
    re.VERBOSE | re.DOTALL,
)
_RELOPS = {"<", "<=", ">=", ">", "==", "!=", "in"}
_LITERAL_WORDS = {"true", "false", "null"}


class CelSyntaxError(ValueError):
    pass


def _tokenize(text: str) -> list[tuple[str, str]]:
    tokens, pos = [], 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise CelSyntaxError(f"Syntax error: token recognition error at: '{text[pos]}'")
        pos = m.end()
        kind = m.lastgroup or ""
        if kind != "ws":
            tokens.append(("string" if kind == "raw" else kind, m.group()))
    return tokens


class _Parser:
    def __init__(self, tokens: list[tuple[str, str]]) -> None:
        self.tokens = tokens
        self.pos = 0

    def peek(self) -> str:
        return self.tokens[self.pos][1] if self.pos < len(self.tokens) else "<EOF>"

    def kind(self) -> str:
        return self.tokens[self.pos][0] if self.pos < len(self.tokens) else "eof"

    def take(self, *values: str) -> bool:
        if self.kind() in ("op", "ident") and self.peek() in values:
            self.pos += 1
            return True
        return False

    def expect(self, value: str) -> None:
        if not self.take(value):
            raise CelSyntaxError(f"Syntax error: mismatched input '{self.peek()}' expecting '{value}'")

    def expr(self) -> None:
        self.binary(0)
        if self.take("?"):
            self.binary(0)
            self.expect(":")
            self.expr()

    _LEVELS = (("||",), ("&&",), tuple(_RELOPS), ("+", "-"), ("*", "/", "%"))

    def binary(self, level: int) -> None:
        if level == len(self._LEVELS):
            self.unary()
            return
        self.binary(level + 1)
        while self.take(*self._LEVELS[level]):
            self.binary(level + 1)

    def unary(self) -> None:
        if self.take("!", "-"):
            while self.take("!", "-"):
                pass
        self.member()

    def member(self) -> None:
        self.primary()
        while True:
            if self.take("."):
                self.ident()
                if self.take("("):
                    self.expr_list(")")
            elif self.take("["):
                self.expr()
                self.expect("]")
            elif self.kind() == "op" and self.peek() == "{":
                self._message_fields()
            else:
                return

    def ident(self) -> str:
        name = self.peek()
        if self.kind() != "ident" or name in _RESERVED or name in _LITERAL_WORDS or name == "in":
            raise CelSyntaxError(f"Syntax error: mismatched input '{name}' expecting IDENTIFIER")
        self.pos += 1
        return name

    def expr_list(self, close: str, *, pairs: bool = False) -> None:
        """Comma-separated expressions (or ``k: v`` pairs) up to ``close``; a trailing comma is fine."""
        while not self.take(close):
            self.expr()
            if pairs:
                self.expect(":")
                self.expr()
            if not self.take(","):
                self.expect(close)
                return

    def primary(self) -> None:
        kind, value = self.kind(), self.peek()
        if kind in ("string", "number") or (kind == "ident" and value in _LITERAL_WORDS):
            self.pos += 1
        elif self.take("("):
            self.expr()
            self.expect(")")
        elif self.take("["):
            self.expr_list("]")
        elif self.take("{"):
            self.expr_list("}", pairs=True)
        else:
            self.take(".")
            self.ident()
            if self.take("("):
                self.expr_list(")")

    def _message_fields(self) -> None:
        self.expect("{")
        while not self.take("}"):
            self.ident()
            self.expect(":")
            self.expr()
            if not self.take(","):
                self.expect("}")
                return


def parse_cel(text: str) -> None:
    """Raise CelSyntaxError unless ``text`` is one well-formed CEL expression."""
    parser = _Parser(_tokenize(text))
    parser.expr()
    if parser.pos != len(parser.tokens):
        raise CelSyntaxError(f"Syntax error: extraneous input '{parser.peek()}' expecting <EOF>")
