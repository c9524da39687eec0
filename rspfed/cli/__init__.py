"""The ``rspfed`` command line.

One click group; each subsystem owns its commands in a module of this package
(``rspfed.cli.asn1``, ``rspfed.cli.pki``, ``rspfed.cli.euicc``, ``rspfed.cli.demo``) and the group
below only collects them.  Every command turns an :class:`rspfed.RspfedError`
into exit status 2 and one line on stderr, never a traceback.
"""

from __future__ import annotations

import click

from rspfed import __version__

__all__ = ["main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="rspfed")
def main() -> None:
    """rspfed: one eSIM subscription across a person's devices."""


def _register() -> None:
    from rspfed.cli.asn1 import decode_command, encode_command
    from rspfed.cli.demo import demo
    from rspfed.cli.euicc import euicc
    from rspfed.cli.federation import federation
    from rspfed.cli.lpa import lpa
    from rspfed.cli.network import network
    from rspfed.cli.operator import operator
    from rspfed.cli.pki import pki
    from rspfed.cli.smdp import smdp

    for command in (
        decode_command,
        encode_command,
        pki,
        euicc,
        demo,
        smdp,
        lpa,
        operator,
        federation,
        network,
    ):
        main.add_command(command)


_register()
