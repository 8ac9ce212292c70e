"""``pilotfish``: the command-line entry point. Only this layer chooses exit codes and wording."""

from __future__ import annotations

import importlib
import sys

import click

from .. import __version__


class _LazyGroup(click.Group):
    """Imports a subcommand's module when the subcommand is looked up, so ``pilotfish proxy``
    does not load the config models (pydantic, ~10 MB of RSS) that only validate/analyze use."""

    LAZY = {"validate": "config_commands", "analyze": "config_commands", "proxy": "proxy_command",
            "istiod": "istiod_command", "proxy-status": "proxy_status_command",
            "proxy-config": "proxy_config_command", "apply": "resource_commands", "get": "resource_commands",
            "delete": "resource_commands", "x": "explain_command", "agent": "agent_command",
            "up": "mesh_commands", "down": "mesh_commands", "status": "mesh_commands", "logs": "mesh_commands",
            "demo": "mesh_commands", "kube-inject": "mesh_commands", "exec": "mesh_commands"}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(self.LAZY))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in self.LAZY and name not in self.commands:
            module = importlib.import_module(f"{__package__}.{self.LAZY[name]}")
            self.add_command(getattr(module, name.replace("-", "_")) if hasattr(module, name.replace("-", "_"))
                             else getattr(module, name + "_"), name)
        return super().get_command(ctx, name)


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="pilotfish", message="%(prog)s %(version)s")
def cli() -> None:
    """pilotfish: a service mesh in Python that speaks Istio's API."""


def main() -> None:
    try:
        cli.main(prog_name="pilotfish", standalone_mode=True)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
