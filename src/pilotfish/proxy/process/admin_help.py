"""Envoy's /help text for the endpoints this admin serves: ``admin commands are:`` then one
``  /path: help`` line per endpoint, sorted, each parameter indented beneath it as Envoy's
AdminImpl::getHelp prints them (help texts are Envoy's)."""

from __future__ import annotations

_FORMAT = ("format", "File format to use", ("text", "json"))
_FILTER = ("filter", "Regular expression (Google re2) for filtering stats", ())

#: (path, help, ((param, help, enum choices), ...))
ENDPOINTS: tuple[tuple[str, str, tuple[tuple[str, str, tuple[str, ...]], ...]], ...] = (
    ("/", "Admin home page", ()),
    ("/clusters", "upstream cluster status", (_FORMAT,)),
    ("/config_dump", "dump current Envoy configs (experimental)", (
        ("resource", "The resource to dump", ()),
        ("mask", "The mask to apply. When both resource and mask are specified, the mask is applied to every "
                 "element in the desired repeated field so that only a subset of fields are returned. The mask "
                 "is parsed as a ProtobufWkt::FieldMask", ()),
        ("include_eds", "Dump currently loaded configuration including EDS. See the response definition for "
                        "more information", ()),
    )),
    ("/drain_listeners", "drain listeners", ()),
    ("/healthz", "return 200 while LIVE, 503 once draining (pilotfish)", ()),
    ("/help", "print out list of admin commands", ()),
    ("/listeners", "print listener info", (_FORMAT,)),
    ("/quitquitquit", "exit the server", ()),
    ("/ready", "print server state, return 200 if LIVE, otherwise return 503", ()),
    ("/server_info", "print server version/status information", ()),
    ("/stats", "print server stats", (_FILTER, ("format", "Format to use", ("text", "json")))),
    ("/stats/prometheus", "print server stats in prometheus format", (_FILTER,)),
)


def help_text() -> str:
    out = ["admin commands are:"]
    for path, text, params in ENDPOINTS:
        out.append(f"  {path}: {text}")
        for name, param_help, choices in params:
            line = f"      {name}: {param_help}"
            if choices:
                line += f"; One of ({', '.join(choices)})"
            out.append(line)
    return "\n".join(out) + "\n"
