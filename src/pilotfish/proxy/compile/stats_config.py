"""The bootstrap's ``stats_config`` → the TagProducer /stats/prometheus names stats with.

As Envoy's TagProducerImpl: the default extractors unless ``use_all_default_tags`` is false,
then each ``stats_tags`` entry in order — a ``regex`` (ECMAScript, as Envoy's std::regex), a
``fixed_value`` (a tag on every stat), or neither (the default extractors of that tag name).
"""

from __future__ import annotations

import re
from typing import Any

from ..common.errors import ProxyConfigError
from ..common.stats_tags import (
    TagExtractor,
    TagProducer,
    default_extractors,
    defaults_named,
)

#: POSIX classes inside brackets, which ECMAScript (std::regex) knows and Python's re does not.
_POSIX = {"[:digit:]": "0-9", "[:alpha:]": "a-zA-Z", "[:alnum:]": "a-zA-Z0-9", "[:upper:]": "A-Z",
          "[:lower:]": "a-z", "[:xdigit:]": "0-9A-Fa-f", "[:space:]": r"\s", "[:w:]": r"\w"}


def python_regex(ecmascript: str) -> str:
    """An ECMAScript regex in Python's syntax (Istio's tags use ``[_.[:digit:]]``)."""
    for k, v in _POSIX.items():
        ecmascript = ecmascript.replace(k, v)
    return ecmascript


def compile_stats_tags(bootstrap: Any) -> TagProducer:
    """The producer of ``bootstrap.stats_config``; raises ProxyConfigError naming the field."""
    sc = bootstrap.stats_config
    use_defaults = not sc.HasField("use_all_default_tags") or sc.use_all_default_tags.value
    extractors = default_extractors() if use_defaults else []
    errors = []
    for i, spec in enumerate(sc.stats_tags):
        path = f"stats_config.stats_tags[{i}]"
        if not spec.tag_name:
            errors.append(ProxyConfigError("tag_name cannot be empty", f"{path}.tag_name"))
            continue
        which = spec.WhichOneof("tag_value")
        if which == "fixed_value":
            extractors.append(TagExtractor(spec.tag_name, fixed=spec.fixed_value))
        elif spec.regex:
            try:
                extractors.append(TagExtractor.from_regex(spec.tag_name, python_regex(spec.regex)))
            except re.error as exc:
                errors.append(ProxyConfigError(f"invalid regex {spec.regex!r}: {exc}", f"{path}.regex"))
        else:
            named = defaults_named(spec.tag_name)
            if not named:
                errors.append(ProxyConfigError(
                    f"no regex specified for tag specifier and no default regex for name {spec.tag_name!r}",
                    f"{path}.regex"))
            extractors.extend(named)
    if errors:
        raise ProxyConfigError.collected(errors)
    return TagProducer(extractors)
