"""RE2 syntax checking as Go's regexp/syntax does it (Perl flags), without compiling.

Istio validates every regex in config with Go's ``regexp.Compile`` and Envoy runs them with
RE2, so a pattern Python's ``re`` accepts (lookarounds, backreferences, possessive
quantifiers, atomic groups) may still be one Istio rejects, and the reverse (``\\pL``,
``\\z``, ``(?i)`` mid-pattern). This module walks the pattern the way Go's parser does and
returns Go's error text, e.g. "error parsing regexp: invalid or unsupported Perl syntax: `(?=`".
"""

from __future__ import annotations

from dataclasses import dataclass, field

MAX_REPEAT = 1000

_CATEGORIES = {
    "C", "Cc", "Cf", "Co", "Cs", "L", "Ll", "Lm", "Lo", "Lt", "Lu", "M", "Mc", "Me", "Mn",
    "N", "Nd", "Nl", "No", "P", "Pc", "Pd", "Pe", "Pf", "Pi", "Po", "Ps", "S", "Sc", "Sk",
    "Sm", "So", "Z", "Zl", "Zp", "Zs", "Any",
}
_SCRIPTS = set("""
Adlam Ahom Anatolian_Hieroglyphs Arabic Armenian Avestan Balinese Bamum Bassa_Vah Batak Bengali
Bhaiksuki Bopomofo Brahmi Braille Buginese Buhid Canadian_Aboriginal Carian Caucasian_Albanian
Chakma Cham Cherokee Chorasmian Common Coptic Cuneiform Cypriot Cypro_Minoan Cyrillic Deseret
Devanagari Dives_Akuru Dogra Duployan Egyptian_Hieroglyphs Elbasan Elymaic Ethiopic Georgian
Glagolitic Gothic Grantha Greek Gujarati Gunjala_Gondi Gurmukhi Han Hangul Hanifi_Rohingya Hanunoo
Hatran Hebrew Hiragana Imperial_Aramaic Inherited Inscriptional_Pahlavi Inscriptional_Parthian
Javanese Kaithi Kannada Katakana Kawi Kayah_Li Kharoshthi Khitan_Small_Script Khmer Khojki
Khudawadi Lao Latin Lepcha Limbu Linear_A Linear_B Lisu Lycian Lydian Mahajani Makasar Malayalam
Mandaic Manichaean Marchen Masaram_Gondi Medefaidrin Meetei_Mayek Mende_Kikakui Meroitic_Cursive
Meroitic_Hieroglyphs Miao Modi Mongolian Mro Multani Myanmar Nabataean Nag_Mundari Nandinagari
New_Tai_Lue Newa Nko Nushu Nyiakeng_Puachue_Hmong Ogham Ol_Chiki Old_Hungarian Old_Italic
Old_North_Arabian Old_Permic Old_Persian Old_Sogdian Old_South_Arabian Old_Turkic Old_Uyghur Oriya
Osage Osmanya Pahawh_Hmong Palmyrene Pau_Cin_Hau Phags_Pa Phoenician Psalter_Pahlavi Rejang Runic
Samaritan Saurashtra Sharada Shavian Siddham SignWriting Sinhala Sogdian Sora_Sompeng Soyombo
Sundanese Syloti_Nagri Syriac Tagalog Tagbanwa Tai_Le Tai_Tham Tai_Viet Takri Tamil Tangsa Tangut
Telugu Thaana Thai Tibetan Tifinagh Tirhuta Toto Ugaritic Vai Vithkuqi Wancho Warang_Citi Yezidi Yi
Zanabazar_Square
""".split())
_POSIX = {"alnum", "alpha", "ascii", "blank", "cntrl", "digit", "graph", "lower", "print", "punct", "space", "upper", "word", "xdigit"}
_C_ESCAPES = {"a": 7, "f": 12, "n": 10, "r": 13, "t": 9, "v": 11}


class RE2Error(ValueError):
    """A pattern Go's regexp (RE2 syntax) would refuse, with Go's message."""

    def __init__(self, code: str, expr: str) -> None:
        super().__init__(f"error parsing regexp: {code}: `{expr}`")
        self.code = code
        self.expr = expr


@dataclass
class _Node:
    """A parsed piece; only counted repeats and nesting matter for validity."""

    min: int = 0
    max: int = 0
    counted: bool = False  # an x{n,m} repeat
    subs: list[_Node] = field(default_factory=list)


@dataclass
class _Frame:
    items: list[_Node | None] = field(default_factory=list)  # None marks a "|"
    capture: bool = True


def check_re2(pattern: str) -> None:
    """Raise RE2Error when Go's regexp.Compile would reject ``pattern``."""
    _Parser(pattern).parse()


def re2_error(pattern: str) -> str | None:
    """Go's error text for ``pattern``, or None when it is valid RE2."""
    try:
        check_re2(pattern)
    except RE2Error as exc:
        return str(exc)
    return None


def _repeat_is_valid(node: _Node, n: int) -> bool:
    if node.counted:
        m = node.max if node.max >= 0 else node.min
        if m == 0:
            return True
        if m > n:
            return False
        n //= m
    return all(_repeat_is_valid(s, n) for s in node.subs)


class _Parser:
    def __init__(self, pattern: str) -> None:
        self.s = pattern
        self.stack: list[_Frame] = [_Frame()]
        self.names: set[str] = set()

    # ------------------------------------------------------------ main loop

    def parse(self) -> None:
        t = self.s
        last_repeat = ""
        while t:
            repeat = ""
            c = t[0]
            if c == "(":
                if len(t) >= 2 and t[1] == "?":
                    t = self._perl_flags(t)
                else:
                    self.stack.append(_Frame())
                    t = t[1:]
            elif c == "|":
                self.stack[-1].items.append(None)
                t = t[1:]
            elif c == ")":
                self._right_paren()
                t = t[1:]
            elif c == "[":
                t = self._char_class(t)
                self._push()
            elif c in "*+?":
                before = t
                t = self._repeat(0, -1, before, t[1:], last_repeat, counted=False)
                repeat = before
            elif c == "{":
                before = t
                parsed = self._parse_repeat(t)
                if parsed is None:
                    self._push()
                    t = t[1:]
                else:
                    lo, hi, after = parsed
                    if lo < 0 or lo > MAX_REPEAT or hi > MAX_REPEAT or (hi >= 0 and lo > hi):
                        raise RE2Error("invalid repeat count", before[: len(before) - len(after)])
                    t = self._repeat(lo, hi, before, after, last_repeat, counted=True)
                    repeat = before
            elif c == "\\":
                t = self._backslash(t)
            else:
                self._push()
                t = t[1:]
            last_repeat = repeat
        if len(self.stack) != 1:
            raise RE2Error("missing closing )", self.s)

    def _push(self, node: _Node | None = None) -> None:
        self.stack[-1].items.append(node or _Node())

    # ------------------------------------------------------------ groups

    def _right_paren(self) -> None:
        if len(self.stack) == 1:
            raise RE2Error("unexpected )", self.s)
        frame = self.stack.pop()
        self._push(_Node(subs=[n for n in frame.items if n is not None]))

    def _perl_flags(self, t: str) -> str:
        if (len(t) > 4 and t[2] == "P" and t[3] == "<") or (len(t) > 3 and t[2] == "<"):
            begin = 4 if t[2] == "P" else 3
            end = t.find(">")
            if end < 0:
                raise RE2Error("invalid named capture", t)
            capture, name = t[: end + 1], t[begin:end]
            if not name or not all(ch == "_" or (ch.isascii() and ch.isalnum()) for ch in name):
                raise RE2Error("invalid named capture", capture)
            if name in self.names:
                raise RE2Error("duplicate capture group name", capture)
            self.names.add(name)
            self.stack.append(_Frame())
            return t[end + 1 :]
        rest = t[2:]
        sign, saw_flag = 1, False
        while rest:
            ch, rest = rest[0], rest[1:]
            if ch in "imsU":
                saw_flag = True
            elif ch == "-":
                if sign < 0:
                    break
                sign, saw_flag = -1, False
            elif ch in ":)":
                if sign < 0 and not saw_flag:
                    break
                if ch == ":":
                    self.stack.append(_Frame(capture=False))
                return rest
            else:
                break
        raise RE2Error("invalid or unsupported Perl syntax", t[: len(t) - len(rest)])

    # ------------------------------------------------------------ repetition

    def _repeat(self, lo: int, hi: int, before: str, after: str, last_repeat: str, *, counted: bool) -> str:
        if after.startswith("?"):
            after = after[1:]
        if last_repeat:
            raise RE2Error("invalid nested repetition operator", last_repeat[: len(last_repeat) - len(after)])
        items = self.stack[-1].items
        if not items or items[-1] is None:
            raise RE2Error("missing argument to repetition operator", before[: len(before) - len(after)])
        node = _Node(min=lo, max=hi, counted=counted, subs=[items[-1]])
        items[-1] = node
        if counted and (lo >= 2 or hi >= 2) and not _repeat_is_valid(node, MAX_REPEAT):
            raise RE2Error("invalid repeat count", before[: len(before) - len(after)])
        return after

    @staticmethod
    def _parse_int(s: str) -> tuple[int, str] | None:
        if not s or not s[0].isdigit() or not s[0].isascii():
            return None
        if len(s) >= 2 and s[0] == "0" and s[1].isdigit():
            return None
        i = 0
        while i < len(s) and "0" <= s[i] <= "9":
            i += 1
        digits = s[:i]
        return (-1 if len(digits) >= 8 else int(digits)), s[i:]

    def _parse_repeat(self, s: str) -> tuple[int, int, str] | None:
        s = s[1:]
        got = self._parse_int(s)
        if got is None:
            return None
        lo, s = got
        if not s:
            return None
        if s[0] != ",":
            hi = lo
        else:
            s = s[1:]
            if not s:
                return None
            if s[0] == "}":
                hi = -1
            else:
                got = self._parse_int(s)
                if got is None:
                    return None
                hi, s = got
                if hi < 0:
                    lo = -1
        if not s or s[0] != "}":
            return None
        return lo, hi, s[1:]

    # ------------------------------------------------------------ escapes and classes

    def _backslash(self, t: str) -> str:
        if len(t) >= 2:
            nxt = t[1]
            if nxt in "AbBz":
                self._push()
                return t[2:]
            if nxt == "C":
                raise RE2Error("invalid escape sequence", t[:2])
            if nxt == "Q":
                lit, _, rest = t[2:].partition("\\E")
                for _ in lit:
                    self._push()
                return rest
        got = self._unicode_class(t)
        if got is not None:
            self._push()
            return got
        if len(t) >= 2 and t[1] in "dDsSwW":
            self._push()
            return t[2:]
        _, rest = self._escape(t)
        self._push()
        return rest

    def _escape(self, s: str) -> tuple[int, str]:
        t = s[1:]
        if not t:
            raise RE2Error("trailing backslash at end of expression", "")
        c, t = t[0], t[1:]
        if c.isascii() and not c.isalnum():
            return ord(c), t
        if c in "1234567" and t and "0" <= t[0] <= "7" or c == "0":
            r = ord(c) - 48
            for _ in range(2):
                if not t or not "0" <= t[0] <= "7":
                    break
                r, t = r * 8 + ord(t[0]) - 48, t[1:]
            return r, t
        if c == "x" and t:
            return self._hex_escape(s, t)
        if c in _C_ESCAPES:
            return _C_ESCAPES[c], t
        raise RE2Error("invalid escape sequence", s[: len(s) - len(t)])

    def _hex_escape(self, s: str, t: str) -> tuple[int, str]:
        c, t = t[0], t[1:]
        if c == "{":
            value, nhex = 0, 0
            while t:
                c, t = t[0], t[1:]
                if c == "}":
                    if nhex:
                        return value, t
                    break
                if c not in "0123456789abcdefABCDEF":
                    break
                value = value * 16 + int(c, 16)
                nhex += 1
                if value > 0x10FFFF:
                    break
            raise RE2Error("invalid escape sequence", s[: len(s) - len(t)])
        d, t = (t[0], t[1:]) if t else ("", t)
        if c in "0123456789abcdefABCDEF" and d and d in "0123456789abcdefABCDEF":
            return int(c + d, 16), t
        raise RE2Error("invalid escape sequence", s[: len(s) - len(t)])

    def _unicode_class(self, s: str) -> str | None:
        if len(s) < 2 or s[0] != "\\" or s[1] not in "pP":
            return None
        t = s[2:]
        if t[:1] != "{":
            seq, rest = s[:3], s[3:]
            name = seq[2:]
        else:
            end = s.find("}")
            if end < 0:
                raise RE2Error("invalid character class range", s)
            seq, rest = s[: end + 1], s[end + 1 :]
            name = s[3:end]
        if name.startswith("^"):
            name = name[1:]
        if name not in _CATEGORIES and name not in _SCRIPTS:
            raise RE2Error("invalid character class range", seq)
        return rest

    def _char_class(self, s: str) -> str:
        t = s[1:]
        if t.startswith("^"):
            t = t[1:]
        first = True
        while not t or t[0] != "]" or first:
            first = False
            if len(t) > 2 and t[0] == "[" and t[1] == ":":
                end = t.find(":]", 2)
                if end >= 0:
                    name = t[2:end].removeprefix("^")
                    if name not in _POSIX:
                        raise RE2Error("invalid character class range", t[: end + 2])
                    t = t[end + 2 :]
                    continue
            got = self._unicode_class(t)
            if got is not None:
                t = got
                continue
            if len(t) >= 2 and t[0] == "\\" and t[1] in "dDsSwW":
                t = t[2:]
                continue
            rng = t
            lo, t = self._class_char(t, s)
            if len(t) >= 2 and t[0] == "-" and t[1] != "]":
                hi, t = self._class_char(t[1:], s)
                if hi < lo:
                    raise RE2Error("invalid character class range", rng[: len(rng) - len(t)])
        return t[1:]

    def _class_char(self, s: str, whole: str) -> tuple[int, str]:
        if not s:
            raise RE2Error("missing closing ]", whole)
        if s[0] == "\\":
            return self._escape(s)
        return ord(s[0]), s[1:]
