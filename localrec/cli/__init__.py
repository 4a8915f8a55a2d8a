"""The `localrec` command line: parse, call one library function, format."""

from localrec.cli.main import cli

__all__ = ["cli"]
