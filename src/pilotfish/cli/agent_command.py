"""``pilotfish agent``: pilot-agent's job for one workload instance or gateway (the local mesh
starts one per instance; see pilotfish.agent)."""

from __future__ import annotations

import sys

import click


@click.command("agent")
@click.option("--spec", "spec_path", required=True, type=click.Path(exists=True, dir_okay=False),
              help="The instance's agent spec (JSON), as the local mesh writes it.")
def agent(spec_path: str) -> None:
    """Run a proxy and its app: bootstrap, readiness, merged metrics, restarts, orderly stop."""
    from ..agent.run import run_agent
    from ..agent.spec import AgentSpec

    try:
        spec = AgentSpec.load(spec_path)
    except (OSError, ValueError, TypeError) as exc:
        click.echo(f"error: {spec_path}: not an agent spec: {exc}", err=True)
        sys.exit(2)
    try:
        run_agent(spec)
    except OSError as exc:
        click.echo(f"error: {spec.name}: cannot start: {exc}", err=True)
        sys.exit(1)
