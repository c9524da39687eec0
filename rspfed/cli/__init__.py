"""The ``rspfed`` command line.

One click group; each subsystem owns its commands in a module of this package
(``rspfed.cli.asn1``, ``rspfed.cli.pki``, ``rspfed.cli.demo``) and the group
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
    from rspfed.cli import asn1 as _asn1
    from rspfed.cli import demo as _demo
    from rspfed.cli import pki as _pki

    main.add_command(_asn1.decode_command)
    main.add_command(_asn1.encode_command)
    main.add_command(_pki.pki)
    main.add_command(_demo.demo)


_register()
