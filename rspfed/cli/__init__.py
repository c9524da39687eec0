"""The ``rspfed`` command line.

One click group; each subsystem owns its commands in a module of this package
(``rspfed.cli.asn1``, ``pki``, ``euicc``, ``smdp``, ``lpa``, ``operator``,
``federation``, ``network``, ``demo``) and the group below only names them,
importing a module when its command runs.  Every command turns an :class:`rspfed.RspfedError`
into exit status 2 and one line on stderr, never a traceback.
"""

from __future__ import annotations

import importlib
from typing import Final

import click

from rspfed import __version__

__all__ = ["main"]


_COMMANDS: Final[dict[str, str]] = {
    "decode": "rspfed.cli.asn1:decode_command",
    "encode": "rspfed.cli.asn1:encode_command",
    "pki": "rspfed.cli.pki:pki",
    "euicc": "rspfed.cli.euicc:euicc",
    "demo": "rspfed.cli.demo:demo",
    "smdp": "rspfed.cli.smdp:smdp",
    "lpa": "rspfed.cli.lpa:lpa",
    "operator": "rspfed.cli.operator:operator",
    "federation": "rspfed.cli.federation:federation",
    "network": "rspfed.cli.network:network",
    "pair": "rspfed.cli.pair:pair",
    "companion": "rspfed.cli.companion:companion",
    "transfer": "rspfed.cli.transfer:transfer",
}
"""Each command and where it lives; a module is imported only when its command runs
(``rspfed lpa ...`` does not pay for the operator service's imports)."""


class _LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(_COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = _COMMANDS.get(cmd_name)
        if target is None:
            return None
        module, _, name = target.partition(":")
        command = getattr(importlib.import_module(module), name)
        if not isinstance(command, click.Command):  # pragma: no cover - a wiring bug
            raise TypeError(f"{target} is not a click command")
        return command


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="rspfed")
def main() -> None:
    """rspfed: one eSIM subscription across a person's devices."""
