"""SAIP (TCA eUICC Profile Package) handling on top of :mod:`rspfed.asn1.saip`.

:mod:`rspfed.saip.identifiers` decodes and encodes the identifiers a package
carries (ICCID, IMSI); :mod:`rspfed.saip.summary` describes a package;
:mod:`rspfed.saip.templates` holds the Annex A file structure templates;
:mod:`rspfed.saip.personalise` personalises a template package;
:mod:`rspfed.saip.install` installs a package into the software eUICC's file
system (import it as ``rspfed.saip.install``: it depends on
:mod:`rspfed.euicc`, which itself uses this package, so it is not imported
here).
"""

from rspfed.saip.identifiers import decode_iccid, decode_imsi, encode_iccid, encode_imsi
from rspfed.saip.personalise import Personalisation, PreparedTemplate, personalise
from rspfed.saip.summary import ProfileSummary, summarise
from rspfed.saip.templates import TEMPLATES, ProfileTemplate, TemplateFile, template_for

__all__ = [
    "TEMPLATES",
    "Personalisation",
    "PreparedTemplate",
    "ProfileSummary",
    "ProfileTemplate",
    "TemplateFile",
    "decode_iccid",
    "decode_imsi",
    "encode_iccid",
    "encode_imsi",
    "personalise",
    "summarise",
    "template_for",
]
