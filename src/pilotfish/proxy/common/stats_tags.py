"""Envoy's tag extraction: a stat's full name (``cluster.web.upstream_rq_200``) becomes a
tag-extracted name (``cluster.upstream_rq``) and tags (``envoy.response_code=200``,
``envoy.cluster_name=web``), the shape /stats/prometheus shows.

As Envoy's TagProducerImpl: every extractor is tried on the full name (the ones whose regex or
token pattern names a first token only on names with that token); each match removes its first
group (or token) from the name and adds a tag, the value being the second group (or the first,
or the token); when several extractors share a tag name the first match wins. The default
extractors are Envoy's TagNames (source/common/config/well_known_names.cc), the bootstrap's
``stats_config.stats_tags`` follow them (compile/stats_config.py builds the producer). Names are
only read at render time, and each name is extracted once (memoized).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

#: Envoy's regex stand-ins (well_known_names.cc expandRegex), in Python's syntax.
_EXPAND = {
    "<ADDRESS>": r"(?:(?:\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}|\[[a-fA-F_\d]+\])_\d+)",
    "<CIPHER>": r"[\w-]+",
    "<TLS_VERSION>": r"TLSv\d\.\d",
    "<TAG_VALUE>": r"[^\.]+",
    "<ROUTE_CONFIG_NAME>": r"[\w.-]+",
    "<LISTENER_OR_CLUSTER_WITH_NAME>": r"(?:listener|cluster)\..*?",
}


def _expand(regex: str) -> str:
    for k, v in _EXPAND.items():
        regex = regex.replace(k, v)
    return regex


#: (tag name, regex, substr, negative match) of Envoy's regex extractors, in Envoy's order.
_REGEXES: tuple[tuple[str, str, str, str], ...] = (
    ("envoy.response_code", r"_rq(_(\d{3}))$", "_rq_", ""),
    ("envoy.response_code_class", r"_rq_((\d))xx$", "_rq_", ""),
    ("envoy.dynamo_partition_id", (r"^http\.<TAG_VALUE>\.dynamodb\.table\.<TAG_VALUE>\.capacity\.<TAG_VALUE>"
                                   r"(\.__partition_id=(\w{7}))$"), ".dynamodb.table.", ""),
    ("envoy.dynamo_operation", (r"^http\.<TAG_VALUE>\.dynamodb.(?:operation|table\.<TAG_VALUE>\.capacity)"
                                r"(\.(<TAG_VALUE>))(?:\.|$)"), ".dynamodb.", ""),
    ("envoy.dynamo_table", r"^http\.<TAG_VALUE>\.dynamodb.(?:table|error)\.((<TAG_VALUE>)\.)", ".dynamodb.", ""),
    ("envoy.ssl_cipher", r"^listener\..*?\.ssl\.ciphers(\.(<CIPHER>))$", ".ssl.ciphers.", ""),
    ("envoy.ssl_curve", r"^<LISTENER_OR_CLUSTER_WITH_NAME>\.ssl\.curves(\.(<CIPHER>))$", ".ssl.curves.", ""),
    ("envoy.ssl_sigalg", r"^<LISTENER_OR_CLUSTER_WITH_NAME>\.ssl\.sigalgs(\.(<CIPHER>))$", ".ssl.sigalgs.", ""),
    ("envoy.ssl_version", r"^<LISTENER_OR_CLUSTER_WITH_NAME>\.ssl\.versions(\.(<TLS_VERSION>))$",
     ".ssl.versions.", ""),
    ("cipher_suite", r"^cluster\.<TAG_VALUE>\.ssl\.ciphers(\.(<CIPHER>))$", ".ssl.ciphers.", ""),
    ("envoy.http_conn_manager_prefix", r"^listener\..*?\.http\.((<TAG_VALUE>)\.)", ".http.", ""),
    ("envoy.worker_id", r"^(?:listener\.(?:<ADDRESS>|<TAG_VALUE>)\.|server\.|listener_manager\.)worker_((\d+)\.)",
     "", ""),
    ("envoy.listener_address", r"^listener\.((<ADDRESS>|<TAG_VALUE>)\.)", "", "admin"),
    ("envoy.rds_route_config", r"^http\.<TAG_VALUE>\.rds\.((<ROUTE_CONFIG_NAME>)\.)\w+?$", ".rds.", ""),
)

#: (tag name, token pattern) of Envoy's tokenized extractors: ``$`` is the value, ``*`` one
#: token, ``**`` any number.
_TOKENS: tuple[tuple[str, str], ...] = (
    ("envoy.mongo_callsite", "mongo.*.collection.*.callsite.$.query.**"),
    ("envoy.mongo_collection", "mongo.*.collection.$.**.query.*"),
    ("envoy.mongo_cmd", "mongo.*.cmd.$.**"),
    ("envoy.grpc_bridge_method", "cluster.*.grpc.*.$.**"),
    ("envoy.http_user_agent", "http.*.user_agent.$.**"),
    ("envoy.virtual_cluster", "vhost.*.vcluster.$.**"),
    ("envoy.fault_downstream_cluster", "http.*.fault.$.**"),
    ("envoy.grpc_bridge_service", "cluster.*.grpc.$.**"),
    ("envoy.tcp_prefix", "tcp.$.**"),
    ("envoy.udp_prefix", "udp.$.**"),
    ("envoy.clientssl_prefix", "auth.clientssl.$.**"),
    ("envoy.ratelimit_prefix", "ratelimit.$.**"),
    ("envoy.cluster_name", "cluster.$.**"),
    ("envoy.ext_authz_prefix", "cluster.*.ext_authz.$.**"),
    ("envoy.ext_authz_prefix", "http.*.ext_authz.$.**"),
    ("envoy.http_conn_manager_prefix", "http.$.**"),
    ("envoy.virtual_host", "vhost.$.**"),
    ("envoy.mongo_prefix", "mongo.$.**"),
    ("envoy.route", "vhost.*.route.$.**"),
    ("envoy.thrift_prefix", "thrift.$.**"),
    ("envoy.redis_prefix", "redis.$.**"),
    ("envoy.local_http_ratelimit_prefix", "$.http_local_rate_limit.**"),
    ("envoy.local_network_ratelimit_prefix", "local_rate_limit.$.**"),
    ("envoy.local_listener_ratelimit_prefix", "listener_local_ratelimit.$.**"),
    ("envoy.dns_filter_prefix", "dns_filter.$.**"),
)


def _regex_prefix(regex: str) -> str:
    """The first token a regex requires (``^cluster\\.`` → ``cluster``), as Envoy's
    extractRegexPrefix: only then is the extractor tried on names starting with it."""
    if not regex.startswith("^"):
        return ""
    for i in range(1, len(regex)):
        c = regex[i]
        if not (c.isascii() and (c.isalnum() or c == "_")):
            if i > 1:
                rest = regex[i:]
                last = i == len(regex) - 1
                if (not last and (rest.startswith(("\\.", "(?=\\.")))) or (last and c == "$"):
                    return regex[1:i]
            return ""
    return ""


@dataclass(frozen=True)
class TagExtractor:
    """One way to find one tag: a regex, a token pattern, or a fixed value (every stat)."""

    name: str
    regex: re.Pattern[str] | None = None
    tokens: tuple[str, ...] = ()
    fixed: str | None = None
    substr: str = ""
    negative: str = ""
    prefix: str = field(default="")

    @classmethod
    def from_regex(cls, name: str, regex: str, substr: str = "", negative: str = "") -> TagExtractor:
        """``regex`` in Python syntax (raises re.error): its first group is removed from the
        name, its second (or the first) is the value."""
        return cls(name, regex=re.compile(regex), substr=substr, negative=negative, prefix=_regex_prefix(regex))

    @classmethod
    def from_tokens(cls, name: str, pattern: str) -> TagExtractor:
        tokens = tuple(pattern.split("."))
        first = tokens[0]
        return cls(name, tokens=tokens, prefix="" if first in ("$", "*", "**") else first)

    def extract(self, stat: str, parts: list[str]) -> tuple[str, int, int] | None:
        """(value, start, end of the characters to remove) or None."""
        if self.fixed is not None:
            return self.fixed, 0, 0
        if self.regex is not None:
            if self.substr and self.substr not in stat:
                return None
            m = self.regex.search(stat)
            if m is None or not m.re.groups or not m.group(1):
                return None
            value = (m.group(2) if m.re.groups >= 2 else None) or m.group(1)
            if self.negative and value == self.negative:
                return None
            return value, m.start(1), m.end(1)
        return self._extract_tokens(parts)

    def _extract_tokens(self, parts: list[str]) -> tuple[str, int, int] | None:
        found = _search(self.tokens, parts, 0, 0, 0)
        if found is None or found == _FAIL:
            return None
        index, start = found
        value = parts[index]
        end = start + len(value)
        if index < len(parts) - 1:
            end += 1  # the dot before the next token
        elif start > 0:
            start -= 1  # the last token: the dot before it
        return value, start, end


_FAIL = (-1, -1)


def _search(pattern: tuple[str, ...], parts: list[str], i: int, p: int, char: int,
            match: tuple[int, int] | None = None) -> tuple[int, int] | None:
    """Envoy's TagExtractorTokensImpl::searchTags: (index of the ``$`` token, its offset);
    _FAIL when the pattern does not match (None: it matches with no ``$`` token seen yet)."""
    while i < len(parts) and p < len(pattern):
        expected = pattern[p]
        if expected == "$":
            match = (i, char)
        elif expected == "**":
            if p == len(pattern) - 1:
                return match
            for j in range(i, len(parts)):
                rest = _search(pattern, parts, j, p + 1, char, match)
                if rest != _FAIL:
                    return rest
                char += len(parts[j]) + 1
            return _FAIL
        elif expected != "*" and expected != parts[i]:
            return _FAIL
        char += len(parts[i]) + 1
        i += 1
        p += 1
    return match if p == len(pattern) and i == len(parts) else _FAIL


def default_extractors() -> list[TagExtractor]:
    """Envoy's default tag extractors, regexes first then token patterns (Envoy's order)."""
    out = [TagExtractor.from_regex(n, _expand(r), s, neg) for n, r, s, neg in _REGEXES]
    out.extend(TagExtractor.from_tokens(n, t) for n, t in _TOKENS)
    return out


def defaults_named(name: str) -> list[TagExtractor]:
    """The default extractors for one tag name (a ``stats_tags`` entry with no regex)."""
    return [e for e in default_extractors() if e.name == name]


class TagProducer:
    """Full stat name → (tag-extracted name, tags), as Envoy's TagProducerImpl::produceTags."""

    def __init__(self, extractors: list[TagExtractor]) -> None:
        self._unprefixed = [e for e in extractors if not e.prefix]
        self._by_prefix: dict[str, list[TagExtractor]] = {}
        for e in extractors:
            if e.prefix:
                self._by_prefix.setdefault(e.prefix, []).append(e)
        counts: dict[str, int] = {}
        for e in extractors:
            counts[e.name] = counts.get(e.name, 0) + 1
        self._shared = {n for n, c in counts.items() if c > 1}
        self._memo: dict[str, tuple[str, tuple[tuple[str, str], ...]]] = {}

    def produce(self, stat: str) -> tuple[str, tuple[tuple[str, str], ...]]:
        done = self._memo.get(stat)
        if done is not None:
            return done
        parts = stat.split(".")
        tags: list[tuple[str, str]] = []
        seen: set[str] = set()
        remove: list[tuple[int, int]] = []
        dot = stat.find(".")
        candidates = self._unprefixed + (self._by_prefix.get(stat[:dot], []) if dot >= 0 else [])
        for e in candidates:
            if e.name in self._shared and e.name in seen:
                continue
            found = e.extract(stat, parts)
            if found is None:
                continue
            value, start, end = found
            tags.append((e.name, value))
            seen.add(e.name)
            if end > start:
                remove.append((start, end))
        done = _remove(stat, remove), tuple(tags)
        if len(self._memo) < 100_000:
            self._memo[stat] = done
        return done


def _remove(stat: str, spans: list[tuple[int, int]]) -> str:
    if not spans:
        return stat
    keep = [True] * len(stat)
    for start, end in spans:
        for i in range(start, end):
            keep[i] = False
    return "".join(c for c, k in zip(stat, keep) if k)


def default_producer() -> TagProducer:
    """Envoy's producer for a bootstrap without stats_config."""
    return TagProducer(default_extractors())
