"""The `atlas` command line: a thin layer over library calls.

Subcommands are imported lazily, so `atlas db status` never imports torch and `atlas trace --help` never imports
the Neo4j driver. Every user error becomes one line on stderr and a non-zero exit.
"""

from __future__ import annotations

import importlib
import sys

import click

from atlas import __version__
from atlas.errors import AtlasError

# command name -> "module:attribute" of its click command; each module is a room for one area of the product.
COMMANDS = {
    "db": "atlas.cli.db:db",
    "trace": "atlas.cli.trace:trace",
    "ingest": "atlas.cli.ingest:ingest",
    "annotate": "atlas.cli.annotate:annotate",
    "analyze": "atlas.cli.analyze:analyze",
    "query": "atlas.cli.query:query",
    "cypher": "atlas.cli.query:cypher",
    "gds": "atlas.cli.gds:gds",
    "report": "atlas.cli.report:report",
    "ablate": "atlas.cli.experiments:ablate",
    "steer": "atlas.cli.experiments:steer",
    "sae": "atlas.cli.sae:sae",
    "demo": "atlas.cli.demo:demo",
    "serve": "atlas.cli.serve:serve",
    "release": "atlas.cli.release:release",
}


class LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use; missing modules are simply not listed."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(name for name in COMMANDS if self._load(name) is not None)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        return self._load(name)

    @staticmethod
    def _load(name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module_name, attribute = COMMANDS[name].split(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            if error.name == module_name:
                return None
            raise
        return getattr(module, attribute)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="atlas")
def cli() -> None:
    """Circuit Atlas: trace SAE-feature circuits of single-cell foundation models into Neo4j and analyse them.

    \b
    Quick start:
      atlas db start                 # managed Neo4j + GDS on localhost
      atlas demo                     # cells -> model -> SAEs -> trace -> graph -> report
      atlas query --list             # the Cypher library
    """


def main() -> None:
    """Console entry point: run the CLI and turn AtlasErrors into one line and exit code 1."""
    try:
        cli.main(standalone_mode=False)
    except AtlasError as error:
        from atlas.cli.output import close_bars

        close_bars()
        click.echo(f"error: {error}", err=True)
        sys.exit(1)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as error:
        error.show()
        sys.exit(error.exit_code)
    except click.exceptions.Exit as exit_:
        sys.exit(exit_.exit_code)
