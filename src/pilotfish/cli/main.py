"""``pilotfish``: the command-line entry point. Only this layer chooses exit codes and wording."""

from __future__ import annotations

import sys

import click

from .. import __version__
from .config_commands import analyze, validate
from .proxy_command import proxy


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="pilotfish", message="%(prog)s %(version)s")
def cli() -> None:
    """pilotfish: a service mesh in Python that speaks Istio's API."""


cli.add_command(validate)
cli.add_command(analyze)
cli.add_command(proxy)


def main() -> None:
    try:
        cli.main(prog_name="pilotfish", standalone_mode=True)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
