"""``pilotfish validate`` and ``pilotfish analyze``: istioctl's config checks."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass, field
from typing import Any

import click

from ..config.errors import ConfigError, LoadError, field_path, format_path, with_field
from ..config.kinds import with_default_namespace
from ..config.loader import Document, SourceError, UnknownKind, load_documents, load_resources, to_resource
from ..config.validation import validate as validate_resource
from .istiod_client import istiod_option, token_option

EXIT_INVALID = 1
EXIT_USAGE = 2
EXIT_ANALYZE_FOUND = 79  # istioctl analyze's exit code when messages reach the threshold
LEVELS = {"Info": 0, "Warning": 1, "Error": 2}


@dataclass
class Report:
    """One line of ``validate -o json``."""

    kind: str
    apiVersion: str
    name: str
    namespace: str
    file: str
    line: int
    valid: bool
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # Each error and warning with its field and that field's line: {level, field, line, message}.
    messages: list[dict[str, object]] = field(default_factory=list)


def _report_for(doc: Document | LoadError) -> Report:
    if isinstance(doc, LoadError):
        return Report("", "", "", "", doc.position.file, doc.position.line, False, [doc.message])
    data = doc.data if isinstance(doc.data, dict) else {}
    meta = data.get("metadata") if isinstance(data.get("metadata"), dict) else {}
    base = Report(
        kind=str(data.get("kind") or ""),
        apiVersion=str(data.get("apiVersion") or ""),
        name=str(meta.get("name") or ""),
        namespace=str(meta.get("namespace") or ""),
        file=doc.file,
        line=doc.line,
        valid=True,
    )
    try:
        resource = to_resource(doc)
    except UnknownKind as exc:
        _add(base, "warning", f"{exc.message}: not validated", doc.line)
        return base
    except ConfigError as exc:
        base.valid = False
        base.line = exc.position.line or base.line
        _add(base, "error", exc.message, base.line, exc.field_path)
        return base
    verdict = validate_resource(resource)
    base.valid = verdict.valid
    for level, found in (("error", verdict.errors), ("warning", verdict.warnings)):
        for m in found:
            _add(base, level, str(m), doc.line_of(field_path(m)), format_path(field_path(m)), shown=with_field(m))
    first = next((m for m in verdict.errors if field_path(m)), None)
    if first is not None:  # the report points at the first offending field's line
        base.line = doc.line_of(field_path(first))
    return base


def _add(r: Report, level: str, message: str, line: int, path: str = "", *, shown: str = "") -> None:
    """One error or warning: as text (``path: message``) and with its field and that field's line."""
    text = shown or (f"{path}: {message}" if path else message)
    (r.errors if level == "error" else r.warnings).append(text)
    r.messages.append({"level": level, "field": path, "line": line, "message": message})


def _text_lines(r: Report) -> list[str]:
    """A report's errors, then warnings; one whose field is on another line than the report's says which."""
    out = []
    for level, texts in (("error", r.errors), ("warning", r.warnings)):
        found = [m for m in r.messages if m["level"] == level]
        out += [f"  {level}: {t}" + (f" (line {m['line']})" if m["line"] != r.line else "") for t, m in zip(texts, found)]
    return out


def _load_or_exit(paths: tuple[str, ...]) -> list[Document | LoadError]:
    try:
        return list(load_documents(paths))
    except SourceError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_USAGE)


_files = click.option(
    "-f", "--filename", "paths", multiple=True, required=True, metavar="PATH",
    help="File or directory (recursive) of YAML/JSON; '-' reads stdin. Repeatable.",
)
_output = click.option("-o", "--output", type=click.Choice(["text", "json"]), default="text", show_default=True)


@click.command()
@_files
@_output
def validate(paths: tuple[str, ...], output: str) -> None:
    """Validate Istio and Kubernetes config as Istio's admission webhook would.

    Exit 0 when every resource is valid, 1 when any is invalid, 2 on usage or I/O errors.
    """
    docs = _load_or_exit(paths)
    reports = [_report_for(doc) for doc in docs]
    if output == "json":
        click.echo(json.dumps([asdict(r) for r in reports], indent=2))
    else:
        for r, doc in zip(reports, docs):
            where = f"{r.file}:{r.line}" if r.line else r.file
            if isinstance(doc, LoadError):  # not config at all: where and why, as the YAML reader says
                click.echo(f"{where}: {doc.message}")
                continue
            ref = f"{r.kind} {r.namespace + '/' if r.namespace else ''}{r.name}".strip() or "document"
            click.echo(f"{where}: {ref}: {'valid' if r.valid else 'invalid'}")
            for line in _text_lines(r):
                click.echo(line)
        invalid = sum(not r.valid for r in reports)
        click.echo(f"{len(reports)} resources, {invalid} invalid, {sum(len(r.warnings) for r in reports)} warnings")
    sys.exit(EXIT_INVALID if any(not r.valid for r in reports) else 0)


@click.command()
@click.option("-f", "--filename", "paths", multiple=True, metavar="PATH",
              help="File or directory (recursive) of YAML/JSON; '-' reads stdin. Repeatable. Without it, "
                   "the running mesh is analyzed.")
@click.option("--live", is_flag=True, help="Layer the -f files on the running mesh's config (check a change "
                                           "before applying it) instead of analyzing them alone.")
@istiod_option
@token_option
@_output
@click.option(
    "--failure-threshold", type=click.Choice(list(LEVELS)), default="Error", show_default=True,
    help="Exit non-zero (79, as istioctl) when a message is at or above this level.",
)
@click.option("--output-threshold", type=click.Choice(list(LEVELS)), default="Info", show_default=True,
              help="Print only messages at or above this level.")
@click.option("--mesh-config", "mesh_config", type=click.Path(dir_okay=False), default=None,
              help="A MeshConfig YAML file, as istioctl's --meshConfigFile.")
@click.option("--analyzer", "analyzers", multiple=True, metavar="NAME",
              help="Run only this analyzer (Istio's name, e.g. virtualservice.DestinationHostAnalyzer). Repeatable.")
@click.option("-n", "--namespace", default="default", show_default=True,
              help="The namespace analyzed: messages about other namespaces' resources are not shown, and "
                   "resources the files give no namespace are placed in it.")
@click.option("-A", "--all-namespaces", is_flag=True, help="Analyze every namespace.")
def analyze(paths: tuple[str, ...], live: bool, istiod_url: str, token: str | None, output: str,
            failure_threshold: str, output_threshold: str, mesh_config: str | None,
            analyzers: tuple[str, ...], namespace: str, all_namespaces: bool) -> None:
    """Analyze a set of resources for cross-resource problems (istioctl analyze's IST codes).

    Files alone are analyzed as istioctl analyze --use-kube=false does: Pods, Services,
    Namespaces, Nodes and Secrets are a cluster's to report, so those in the files are ignored
    and the checks that need them are skipped. Without -f, the running mesh's config (istiod's,
    with its Pods and Services) is analyzed as istioctl analyzes a live cluster; with --live the
    files are layered on it.
    """
    from ..config import analysis
    from .live_config import layered, live_resources

    try:
        resources, errors = load_resources(paths) if paths else ([], [])
    except SourceError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_USAGE)
    files_only = bool(paths) and not live
    scope = "" if all_namespaces else namespace
    resources = [with_default_namespace(r, scope) for r in resources]  # istioctl's default namespace
    if not files_only:
        resources = layered(live_resources(istiod_url, token), resources)
    mesh = None
    if mesh_config:
        try:
            mesh = analysis.load_mesh_config(mesh_config)
        except (OSError, ConfigError, ValueError) as exc:
            click.echo(f"error: {mesh_config}: {exc}", err=True)
            sys.exit(EXIT_USAGE)
    try:
        messages = analysis.analyze(resources, mesh_config=mesh, analyzers=list(analyzers) or None,
                                    files_only=files_only)
    except KeyError as exc:
        click.echo(f"error: unknown analyzer {exc.args[0]}", err=True)
        sys.exit(EXIT_USAGE)
    messages = [m for m in analysis.load_error_messages(errors, files_only=files_only) + messages if _in_scope(m, scope)]
    shown = [m for m in messages if LEVELS[_level(m)] >= LEVELS[output_threshold]]
    target = f"namespace: {scope}" if scope else "all namespaces"
    if output == "json":
        click.echo(json.dumps([_message_json(m) for m in shown], indent=2))
    elif shown:
        for m in shown:
            click.echo(message_text(m))
    else:
        click.echo(f"\u2714 No validation issues found when analyzing {'the given files' if files_only else target}.")
    failed = any(LEVELS[_level(m)] >= LEVELS[failure_threshold] for m in messages)
    if failed and output == "text":
        click.echo(f"Error: Analyzers found issues when analyzing {target}.\n"
                   f"See {ANALYSIS_DOCS} for more information about causes and resolutions.", err=True)
    sys.exit(EXIT_ANALYZE_FOUND if failed else 0)


ANALYSIS_DOCS = "https://istio.io/latest/docs/reference/config/analysis"


def _in_scope(m: Any, namespace: str) -> bool:
    """Whether a message is about the namespace analyzed (istioctl keeps those about cluster-scoped
    resources and those about none)."""
    return not namespace or m.resource is None or m.resource.namespace in ("", namespace)


def _level(m: Any) -> str:
    return str(getattr(m.level, "value", m.level))


def message_text(m: Any) -> str:
    """istioctl's line, with the file:line after it: ``Error [IST0101] (Kind ns/name) text [f.yaml:3]``."""
    origin = f" ({m.resource})" if m.resource is not None else ""
    where = f" [{m.position}]" if m.position is not None and str(m.position) else ""
    return f"{_level(m)} [{m.code}]{origin} {m.message}{where}"


def _message_json(m: Any) -> dict[str, Any]:
    r = m.resource
    return {
        "code": m.code,
        "level": _level(m),
        "message": m.message,
        "resource": {"kind": r.kind, "name": r.name, "namespace": r.namespace or ""} if r is not None else None,
        "file": m.position.file if m.position is not None else "",
        "line": m.position.line if m.position is not None else 0,
    }
