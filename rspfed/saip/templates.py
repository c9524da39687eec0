"""SAIP file structure templates (TCA eUICC Profile Package, Annex A "File Structure Templates").

A profile element such as ``PE-USIM`` refers to a template by its
``templateID`` OID.  The template says, for every file the element may name
(by its ASN.1 field name, ``ef-imsi``), the file identifier, the structure,
the size (transparent/BER-TLV) or record length and number of records
(linear fixed/cyclic), the SFI, the default content, and the EF.ARR record
of its access rules.  A profile element overrides any of these with its own
``fileDescriptor`` (``Fcp``) and fills the content with
``fillFileContent``/``fillFileOffset``; whatever it leaves out comes from
the template (:mod:`rspfed.saip.install` does the merging).

**Sources.**  Primary: TCA "eUICC Profile Package: Interoperable Format
Technical Specification" v2.3.1 / v3.3.1, Annex A (tables A.1 ff.: files at
MF, DF.TELECOM, ADF.USIM mandatory and optional, DF.GSM-ACCESS, ADF.ISIM
mandatory and optional, DF.5GS, DF.SAIP, DF.EAP) and §9.9 (access rules).
Secondary: the transcription of those tables in Osmocom pySim
(``pySim/esim/saip/templates.py``), used to read the facts off; no code is
taken from it.  Every file of the 18 GSMA TS.48 packages in
``rspfed/data/ts48`` is checked against these tables in
``tests/saip/test_templates.py``.  Known deviation from pySim: the EF.ICCID
file id is ``2FE2`` (TS 102 221 §13.2).

**Covered templates** (:data:`TEMPLATES`): the ones TS.48 packages use,
plus DF.EAP.  The CSIM templates (``2.23.143.1.2.10``/``.11``) are filled in
from a different source: the TCA tables themselves were not available to us
and pySim has no CSIM templates, so file ids, structures and sizes are those
of 3GPP2 C.S0065-B §5.2 (the CSIM EF definitions the TCA tables follow),
without the ARR and SFI columns; the TS.48 test checks every CSIM file the
packages carry against them.

Default content notation (as in Annex A): hex, ``...`` repeats the octet
before it to fill the file or record (``"00FF...FF"``); with
``repeat=True`` the whole pattern is repeated (EF.PLMNwAcT).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from types import MappingProxyType

import attrs

from rspfed.errors import UsageError

__all__ = [
    "ARR_RULES",
    "TEMPLATES",
    "TS48_TEMPLATE_OIDS",
    "FileKind",
    "ProfileTemplate",
    "TemplateFile",
    "expand_default",
    "template_for",
]

TCA_TEMPLATE_ARC = "2.23.143.1.2"
"""The OID arc of the SAIP templates (``id-MF`` is ``2.23.143.1.2.1``)."""


class FileKind(enum.Enum):
    """File type in the Annex A tables."""

    MF = "MF"
    DF = "DF"
    ADF = "ADF"
    TRANSPARENT = "TR"
    LINEAR_FIXED = "LF"
    CYCLIC = "CY"
    BER_TLV = "BT"

    @property
    def is_df(self) -> bool:
        """MF, DF or ADF."""
        return self in (FileKind.MF, FileKind.DF, FileKind.ADF)

    @property
    def is_record(self) -> bool:
        """Linear fixed or cyclic."""
        return self in (FileKind.LINEAR_FIXED, FileKind.CYCLIC)


@attrs.frozen
class TemplateFile:
    """One row of an Annex A table.

    ``size`` is the file size of a transparent/BER-TLV EF, the record length
    of a record EF; ``records`` the number of records.  ``None`` where the
    table says the profile must give it.  ``fid`` is ``None`` for an ADF
    (temporary file id from the package) and for the DF.PHONEBOOK EFs whose
    file ids the profile chooses.  ``parent`` names the sub-DF (ASN.1 field
    name) the file lives in, ``None`` for the template's base DF.
    """

    pe_name: str
    name: str
    fid: int | None
    kind: FileKind
    size: int | None = None
    records: int | None = None
    arr: int | None = None
    sfi: int | None = None
    default: str | None = None
    repeat: bool = False
    parent: str | None = None

    def default_content(self, length: int) -> bytes | None:
        """The default content (one record for record EFs) of ``length`` octets, or ``None``."""
        if self.default is None:
            return None
        return expand_default(self.default, length, repeat=self.repeat)


def expand_default(pattern: str, length: int, *, repeat: bool = False) -> bytes:
    """Expand an Annex A default value to ``length`` octets.

    ``"07FF...FF"``: prefix, the octet before ``...`` repeated, suffix.
    Without ``...`` the value is used as is (cut or padded with ``FF``), or
    repeated when ``repeat`` is set.
    """
    if length < 0:
        raise UsageError("negative length")
    if "..." in pattern:
        head, _, tail = pattern.partition("...")
        prefix, suffix = bytes.fromhex(head), bytes.fromhex(tail)
        pad = length - len(prefix) - len(suffix)
        if pad <= 0:
            return (prefix + suffix)[:length]
        return prefix + prefix[-1:] * pad + suffix
    value = bytes.fromhex(pattern)
    if repeat and value:
        return (value * (length // len(value) + 1))[:length]
    return value[:length].ljust(length, b"\xff")


@attrs.frozen
class ProfileTemplate:
    """One Annex A template: its OID, the PE that uses it, its files.

    ``base`` is where the files go: ``"MF"``; ``"ADF"`` (the template
    creates its own ADF, first row); ``"USIM"``/``"ISIM"`` (extends or lives
    under the ADF created by the mandatory template).  ``by_default``: the
    files are created even when the PE does not name them (SAIP "created by
    default" templates).
    """

    oid: str
    name: str
    pe: str
    base: str
    by_default: bool
    files: tuple[TemplateFile, ...]

    @property
    def by_pe_name(self) -> Mapping[str, TemplateFile]:
        """Files by ASN.1 field name."""
        return {f.pe_name: f for f in self.files}

    def file(self, pe_name: str) -> TemplateFile | None:
        """The row for ``pe_name`` (``None`` if the template has no such file)."""
        for f in self.files:
            if f.pe_name == pe_name:
                return f
        return None


def _hex(value: str) -> int | None:
    return None if value == "-" else int(value, 16)


def _int(value: str) -> int | None:
    return None if value == "-" else int(value)


def _parse(table: str) -> tuple[TemplateFile, ...]:
    """Rows: pe_name name fid kind records size arr sfi default [parent] (``-`` = none)."""
    rows: list[TemplateFile] = []
    for line in table.strip().splitlines():
        cols = line.split()
        pe_name, name, fid, kind, nrec, size, arr, sfi, default = cols[:9]
        parent = cols[9] if len(cols) > 9 else None
        repeat = default.endswith("*")
        default = default.rstrip("*")
        rows.append(
            TemplateFile(
                pe_name=pe_name,
                name=name,
                fid=_hex(fid),
                kind=FileKind(kind),
                records=_int(nrec),
                size=_int(size),
                arr=_int(arr),
                sfi=_hex(sfi),
                default=None if default == "-" else default,
                repeat=repeat,
                parent=parent,
            )
        )
    return tuple(rows)


# Columns: ASN.1 field, file name, FID, type, #records, size/record length, ARR record,
# SFI (hex), default value (``*`` = repeat the pattern), parent sub-DF.

_MF = """
mf            MF        3F00 MF - -  14 -  -
ef-pl         EF.PL     2F05 TR - 2  1  05 FF...FF
ef-iccid      EF.ICCID  2FE2 TR - 10 11 02 -
ef-dir        EF.DIR    2F00 LF - -  10 1E -
ef-arr        EF.ARR    2F06 LF - -  10 06 -
ef-umpc       EF.UMPC   2F08 TR - 5  10 08 -
"""

_TELECOM = """
df-telecom      DF.TELECOM      7F10 DF - -  14 - -
ef-arr          EF.ARR          6F06 LF - -  10 - -
ef-rma          EF.RMA          6F53 LF - -  3  - -
ef-sume         EF.SUME         6F54 TR - 22 3  - -
ef-ice-dn       EF.ICE_DN       6FE0 LF 50 24 9 - FF...FF
ef-ice-ff       EF.ICE_FF       6FE1 LF - -  9  - FF...FF
ef-psismsc      EF.PSISMSC      6FE5 LF - -  5  - -
df-graphics     DF.GRAPHICS     5F50 DF - -  14 - -
ef-img          EF.IMG          4F20 LF - -  2  - 00FF...FF df-graphics
ef-iidf         EF.IIDF         -    TR - -  2  - FF...FF   df-graphics
ef-ice-graphics EF.ICE_GRAPHICS 4F21 BT - -  9  - -         df-graphics
ef-launch-scws  EF.LAUNCH_SCWS  4F01 TR - -  10 - -         df-graphics
ef-icon         EF.ICON         -    TR - -  10 - -         df-graphics
df-phonebook    DF.PHONEBOOK    5F3A DF - -  14 - -
ef-pbr          EF.PBR          4F30 LF - -  2  - -         df-phonebook
ef-ext1         EF.EXT1         -    LF - 13 5  - 00FF...FF df-phonebook
ef-aas          EF.AAS          -    LF - -  5  - FF...FF   df-phonebook
ef-gas          EF.GAS          -    LF - -  5  - FF...FF   df-phonebook
ef-psc          EF.PSC          4F22 TR - 4  5  - 00000000  df-phonebook
ef-cc           EF.CC           4F23 TR - 2  5  - 0000      df-phonebook
ef-puid         EF.PUID         4F24 TR - 2  5  - 0000      df-phonebook
ef-iap          EF.IAP          -    LF - -  5  - FF...FF   df-phonebook
ef-adn          EF.ADN          -    LF - -  5  - FF...FF   df-phonebook
ef-pbc          EF.PBC          -    LF - 2  5  - 00...00   df-phonebook
ef-anr          EF.ANR          -    LF - -  5  - FF...FF   df-phonebook
ef-puri         EF.PURI         -    LF - -  5  - -         df-phonebook
ef-email        EF.EMAIL        -    LF - -  5  - FF...FF   df-phonebook
ef-sne          EF.SNE          -    LF - -  5  - FF...FF   df-phonebook
ef-uid          EF.UID          -    LF - 2  5  - 0000      df-phonebook
ef-grp          EF.GRP          -    LF - -  5  - 00...00   df-phonebook
ef-ccp1         EF.CCP1         -    LF - -  5  - FF...FF   df-phonebook
df-multimedia   DF.MULTIMEDIA   5F3B DF - -  14 - -
ef-mml          EF.MML          4F47 BT - -  5  - -         df-multimedia
ef-mmdf         EF.MMDF         4F48 BT - -  5  - -         df-multimedia
df-mmss         DF.MMSS         5F3C DF - -  14 - -
ef-mlpl         EF.MLPL         4F20 TR - -  2  01 -        df-mmss
ef-mspl         EF.MSPL         4F21 TR - -  2  02 -        df-mmss
ef-mmssmode     EF.MMSSMODE     4F22 TR - 1  2  03 -        df-mmss
"""

_USIM = """
adf-usim     ADF.USIM     -    ADF - -   14 -  -
ef-imsi      EF.IMSI      6F07 TR  - 9   2  07 -
ef-arr       EF.ARR       6F06 LF  - -   10 17 -
ef-keys      EF.Keys      6F08 TR  - 33  5  08 07FF...FF
ef-keysPS    EF.KeysPS    6F09 TR  - 33  5  09 07FF...FF
ef-hpplmn    EF.HPPLMN    6F31 TR  - 1   2  12 0A
ef-ust       EF.UST       6F38 TR  - 14  2  04 -
ef-fdn       EF.FDN       6F3B LF 20 26  8  -  FF...FF
ef-sms       EF.SMS       6F3C LF 10 176 5  -  00FF...FF
ef-smsp      EF.SMSP      6F42 LF 1  38  5  -  FF...FF
ef-smss      EF.SMSS      6F43 TR  - 2   5  -  FFFF
ef-spn       EF.SPN       6F46 TR  - 17  10 -  -
ef-est       EF.EST       6F56 TR  - 1   8  05 -
ef-start-hfn EF.START-HFN 6F5B TR  - 6   5  0F F00000F00000
ef-threshold EF.THRESHOLD 6F5C TR  - 3   2  10 FFFFFF
ef-psloci    EF.PSLOCI    6F73 TR  - 14  5  0C FFFFFFFFFFFFFFFFFFFF0000FF01
ef-acc       EF.ACC       6F78 TR  - 2   2  06 -
ef-fplmn     EF.FPLMN     6F7B TR  - 12  5  0D FF...FF
ef-loci      EF.LOCI      6F7E TR  - 11  5  0B FFFFFFFFFFFFFF0000FF01
ef-ad        EF.AD        6FAD TR  - 4   10 03 00000002
ef-ecc       EF.ECC       6FB7 LF 1  4   10 01 -
ef-netpar    EF.NETPAR    6FC4 TR  - 128 5  -  FF...FF
ef-epsloci   EF.EPSLOCI   6FE3 TR  - 18  5  1E FFFFFFFFFFFFFFFFFFFFFFFFFFFFFF000001
ef-epsnsc    EF.EPSNSC    6FE4 LF 1  80  5  18 FF...FF
"""

_OPT_USIM = """
ef-li        EF.LI        6F05 TR - 6   1  02 FF...FF
ef-acmax     EF.ACMmax    6F37 TR - 3   5  -  000000
ef-acm       EF.ACM       6F39 CY 1  3  7  -  000000
ef-gid1      EF.GID1      6F3E TR - 8   2  -  -
ef-gid2      EF.GID2      6F3F TR - 8   2  -  -
ef-msisdn    EF.MSISDN    6F40 LF 1  24 2  -  FF...FF
ef-puct      EF.PUCT      6F41 TR - 5   5  -  FFFFFF0000
ef-cbmi      EF.CBMI      6F45 TR - 10  5  -  FF...FF
ef-cbmid     EF.CBMID     6F48 TR - 10  2  0E FF...FF
ef-sdn       EF.SDN       6F49 LF 10 24 2  -  FF...FF
ef-ext2      EF.EXT2      6F4B LF 10 13 8  -  00FF...FF
ef-ext3      EF.EXT3      6F4C LF 10 13 2  -  00FF...FF
ef-cbmir     EF.CBMIR     6F50 TR - 20  5  -  FF...FF
ef-plmnwact  EF.PLMNwAcT  6F60 TR - 40  5  0A FFFFFF0000*
ef-oplmnwact EF.OPLMNwAcT 6F61 TR - 40  2  11 FFFFFF0000*
ef-hplmnwact EF.HPLMNwAcT 6F62 TR - 5   2  13 FFFFFF0000*
ef-dck       EF.DCK       6F2C TR - 16  5  -  FF...FF
ef-cnl       EF.CNL       6F32 TR - 30  2  -  FF...FF
ef-smsr      EF.SMSR      6F47 LF 10 30 5  -  00FF...FF
ef-bdn       EF.BDN       6F4D LF 10 25 8  -  FF...FF
ef-ext5      EF.EXT5      6F4E LF 10 13 5  -  00FF...FF
ef-ccp2      EF.CCP2      6F4F LF 5  15 5  16 FF...FF
ef-ext4      EF.EXT4      6F55 LF 10 13 8  -  00FF...FF
ef-acl       EF.ACL       6F57 TR - 101 8  -  00FF...FF
ef-cmi       EF.CMI       6F58 LF 10 11 2  -  FF...FF
ef-ici       EF.ICI       6F80 CY 20 38 5  14 FF...FF0000000001FFFF
ef-oci       EF.OCI       6F81 CY 20 37 5  15 FF...FF00000001FFFF
ef-ict       EF.ICT       6F82 CY 1  3  7  -  000000
ef-oct       EF.OCT       6F83 CY 1  3  7  -  000000
ef-vgcs      EF.VGCS      6FB1 TR - 20  2  -  -
ef-vgcss     EF.VGCSS     6FB2 TR - 7   5  -  -
ef-vbs       EF.VBS       6FB3 TR - 20  2  -  -
ef-vbss      EF.VBSS      6FB4 TR - 7   5  -  -
ef-emlpp     EF.eMLPP     6FB5 TR - 2   2  -  -
ef-aaem      EF.AaeM      6FB6 TR - 1   5  -  00
ef-hiddenkey EF.HiddenKey 6FC3 TR - 4   5  -  FF...FF
ef-pnn       EF.PNN       6FC5 LF 10 16 10 19 -
ef-opl       EF.OPL       6FC6 LF 5  8  10 1A -
ef-mbdn      EF.MBDN      6FC7 LF 3  24 5  -  -
ef-ext6      EF.EXT6      6FC8 LF 10 13 5  -  00FF...FF
ef-mbi       EF.MBI       6FC9 LF 10 5  5  -  -
ef-mwis      EF.MWIS      6FCA LF 10 6  5  -  00...00
ef-cfis      EF.CFIS      6FCB LF 10 16 5  -  0100FF...FF
ef-ext7      EF.EXT7      6FCC LF 10 13 5  -  00FF...FF
ef-spdi      EF.SPDI      6FCD TR - 17  2  1B -
ef-mmsn      EF.MMSN      6FCE LF 10 6  5  -  000000FF...FF
ef-ext8      EF.EXT8      6FCF LF 10 13 5  -  00FF...FF
ef-mmsicp    EF.MMSICP    6FD0 TR - 100 2  -  FF...FF
ef-mmsup     EF.MMSUP     6FD1 LF - -   5  -  FF...FF
ef-mmsucp    EF.MMSUCP    6FD2 TR - 100 5  -  FF...FF
ef-nia       EF.NIA       6FD3 LF 5  11 2  -  FF...FF
ef-vgcsca    EF.VGCSCA    6FD4 TR - -   2  -  00...00
ef-vbsca     EF.VBSCA     6FD5 TR - -   2  -  00...00
ef-gbabp     EF.GBABP     6FD6 TR - -   5  -  FF...FF
ef-msk       EF.MSK       6FD7 LF - -   2  -  FF...FF
ef-muk       EF.MUK       6FD8 LF - -   2  -  FF...FF
ef-ehplmn    EF.EHPLMN    6FD9 TR - 15  2  1D FF...FF
ef-gbanl     EF.GBANL     6FDA LF - -   2  -  FF...FF
ef-ehplmnpi  EF.EHPLMNPI  6FDB TR - 1   2  -  00
ef-lrplmnsi  EF.LRPLMNSI  6FDC TR - 1   2  -  00
ef-nafkca    EF.NAFKCA    6FDD LF - -   2  -  FF...FF
ef-spni      EF.SPNI      6FDE TR - -   10 -  00FF...FF
ef-pnni      EF.PNNI      6FDF LF - -   10 -  00FF...FF
ef-ncp-ip    EF.NCP-IP    6FE2 LF - -   2  -  -
ef-ufc EF.UFC 6FE6 TR - 30 10 - 801E60C01E900080040000000000000000F0000000004000000000000080
ef-nasconfig EF.NASCONFIG 6FE8 TR - 18  2  -  -
ef-uicciari  EF.UICCIARI  6FE7 LF - -   2  -  -
ef-pws       EF.PWS       6FEC TR - -   10 -  -
ef-fdnuri    EF.FDNURI    6FED LF - -   8  -  FF...FF
ef-bdnuri    EF.BDNURI    6FEE LF - -   8  -  FF...FF
ef-sdnuri    EF.SDNURI    6FEF LF - -   2  -  FF...FF
ef-ial       EF.IWL       6FF0 LF - -   3  -  FF...FF
ef-ips       EF.IPS       6FF1 CY - 4   10 -  FF...FF
ef-ipd       EF.IPD       6FF2 LF - -   3  -  FF...FF
"""

_GSM_ACCESS = """
df-gsm-access DF.GSM-ACCESS 5F3B DF - -  14 -  -
ef-kc         EF.Kc         4F20 TR - 9  5  01 FF...FF07
ef-kcgprs     EF.KcGPRS     4F52 TR - 9  5  02 FF...FF07
ef-cpbcch     EF.CPBCCH     4F63 TR - 10 5  -  FF...FF
ef-invscan    EF.InvScan    4F64 TR - 1  2  -  00
"""

_ISIM = """
adf-isim  ADF.ISIM  -    ADF - - 14 -  -
ef-impi   EF.IMPI   6F02 TR  - - 2  02 -
ef-impu   EF.IMPU   6F04 LF  1 - 2  04 -
ef-domain EF.DOMAIN 6F03 TR  - - 2  05 -
ef-ist    EF.IST    6F07 TR  - 14 2 07 -
ef-ad     EF.AD     6FAD TR  - 3 10 03 000000
ef-arr    EF.ARR    6F06 LF  - - 10 06 -
"""

_OPT_ISIM = """
ef-pcscf    EF.P-CSCF   6F09 LF 1  -   2 - -
ef-sms      EF.SMS      6F3C LF 10 176 5 - 00FF...FF
ef-smsp     EF.SMSP     6F42 LF 1  38  5 - FF...FF
ef-smss     EF.SMSS     6F43 TR -  2   5 - FFFF
ef-smsr     EF.SMSR     6F47 LF 10 30  5 - 00FF...FF
ef-gbabp    EF.GBABP    6FD5 TR -  -   5 - FF...FF
ef-gbanl    EF.GBANL    6FD7 LF -  -   2 - FF...FF
ef-nafkca   EF.NAFKCA   6FDD LF -  -   2 - FF...FF
ef-uicciari EF.UICCIARI 6FE7 LF -  -   2 - -
"""

_DF_5GS = """
df-df-5gs            DF.5GS               5FC0 DF - -   14 -  -
ef-5gs3gpploci       EF.5GS3GPPLOCI       4F01 TR - 20  5  01 FF...FF00000001
ef-5gsn3gpploci      EF.5GSN3GPPLOCI      4F02 TR - 20  5  02 FF...FF00000001
ef-5gs3gppnsc        EF.5GS3GPPNSC        4F03 LF 1 57  5  03 FF...FF
ef-5gsn3gppnsc       EF.5GSN3GPPNSC       4F04 LF 1 57  5  04 FF...FF
ef-5gauthkeys        EF.5GAUTHKEYS        4F05 TR - 110 5  05 -
ef-uac-aic           EF.UAC_AIC           4F06 TR - 4   2  06 -
ef-suci-calc-info    EF.SUCI_Calc_Info    4F07 TR - -   2  07 FF...FF
ef-opl5g             EF.OPL5G             4F08 LF - 10  10 08 FF...FF
ef-supinai           EF.SUPI_NAI          4F09 TR - -   2  09 -
ef-routing-indicator EF.Routing_Indicator 4F0A TR - 4   2  0A F0FFFFFF
"""

_DF_SAIP = """
df-df-saip             DF.SAIP        5FD0 DF - - 14 - -
ef-suci-calc-info-usim EF.SUCICalcInfo 4F01 TR - - 3  - FF...FF
"""

_EAP = """
df-eap       DF.EAP       -    DF - - 14 - -
ef-eapkeys   EF.EAPKEYS   4F01 TR - - 2  - -
ef-eapstatus EF.EAPSTATUS 4F02 TR - 1 2  - 00
ef-puid      EF.PUId      4F03 TR - - 2  - -
ef-ps        EF.Ps        4F04 TR - - 5  - FF...FF
ef-curid     EF.CurID     4F20 TR - - 5  - FF...FF
ef-reid      EF.RelID     4F21 TR - - 5  - -
ef-realm     EF.Realm     4F22 TR - - 5  - -
"""


# ADF.CSIM: file ids, structures and sizes as 3GPP2 C.S0065-B (cdma2000 Application on
# UICC) §5.2 defines them, in the order of the TCA PE-CSIM / PE-OPT-CSIM types
# (PEDefinitions 3.3.1).  The ARR and SFI columns of the TCA tables are not transcribed
# ("-"): every TS.48 CSIM file carries its own securityAttributesReferenced.  A size of
# "-" means the profile must give it (variable-size files: PRL, CST, tags, ...).
# EF.COUNT's one record is our choice for a package that gives no file size.
_CSIM = """
adf-csim        ADF.CSIM        -    ADF - -  - - -
ef-arr          EF.ARR          6F06 LF  - -  - - -
ef-call-count   EF.COUNT        6F21 CY  1 2  - - -
ef-imsi-m       EF.IMSI_M       6F22 TR  - 10 - - -
ef-imsi-t       EF.IMSI_T       6F23 TR  - 10 - - -
ef-tmsi         EF.TMSI         6F24 TR  - 16 - - -
ef-ah           EF.AH           6F25 TR  - 2  - - -
ef-aop          EF.AOP          6F26 TR  - 1  - - -
ef-aloc         EF.ALOC         6F27 TR  - 7  - - -
ef-cdmahome     EF.CDMAHOME     6F28 LF  - 5  - - -
ef-znregi       EF.ZNREGI       6F29 LF  - 8  - - -
ef-snregi       EF.SNREGI       6F2A TR  - 7  - - -
ef-distregi     EF.DISTREGI     6F2B TR  - 14 - - -
ef-accolc       EF.ACCOLC       6F2C TR  - 1  - - -
ef-term         EF.TERM         6F2D TR  - 1  - - -
ef-acp          EF.ACP          6F2F TR  - 7  - - -
ef-prl          EF.PRL          6F30 TR  - -  - - -
ef-ruimid       EF.RUIMID       6F31 TR  - 8  - - -
ef-csim-st      EF.CST          6F32 TR  - -  - - -
ef-spc          EF.SPC          6F33 TR  - 3  - - -
ef-otapaspc     EF.OTAPASPC     6F34 TR  - 1  - - -
ef-namlock      EF.NAMLOCK      6F35 TR  - 1  - - -
ef-ota          EF.OTA          6F36 TR  - 17 - - -
ef-sp           EF.SP           6F37 TR  - 1  - - -
ef-esn-meid-me  EF.ESN_MEID_ME  6F38 TR  - 8  - - -
ef-li           EF.LI           6F3A TR  - -  - - -
ef-usgind       EF.USGIND       6F42 TR  - 1  - - -
ef-ad           EF.AD           6F43 TR  - 3  - - -
ef-max-prl      EF.MAXPRL       6F45 TR  - 4  - - -
ef-spcs         EF.SPCS         6F46 TR  - 1  - - -
ef-mecrp        EF.MECRP        6F55 TR  - 3  - - -
ef-home-tag     EF.HOME_TAG     6F70 TR  - -  - - -
ef-group-tag    EF.GROUP_TAG    6F71 TR  - -  - - -
ef-specific-tag EF.SPECIFIC_TAG 6F72 TR  - -  - - -
ef-call-prompt  EF.CALL_PROMPT  6F73 TR  - -  - - -
"""

_OPT_CSIM = """
ef-ssci            EF.SSCI           6F2E TR - 1   - - -
ef-fdn             EF.FDN            6F3B LF - -   - - -
ef-sms             EF.SMS            6F3C LF - -   - - -
ef-smsp            EF.SMSP           6F3D LF - -   - - -
ef-smss            EF.SMSS           6F3E TR - -   - - -
ef-ssfc            EF.SSFC           6F3F TR - -   - - -
ef-spn             EF.SPN            6F41 TR - 35  - - -
ef-mdn             EF.MDN            6F44 LF - 11  - - -
ef-ecc             EF.ECC            6F47 TR - -   - - -
ef-me3gpdopc       EF.ME3GPDOPC      6F48 TR - 1   - - -
ef-3gpdopm         EF.3GPDOPM        6F49 TR - 1   - - -
ef-sipcap          EF.SIPCAP         6F4A TR - 4   - - -
ef-mipcap          EF.MIPCAP         6F4B TR - 5   - - -
ef-sipupp          EF.SIPUPP         6F4C TR - -   - - -
ef-mipupp          EF.MIPUPP         6F4D TR - -   - - -
ef-sipsp           EF.SIPSP          6F4E TR - 1   - - -
ef-mipsp           EF.MIPSP          6F4F TR - -   - - -
ef-sippapss        EF.SIPPAPSS       6F50 TR - -   - - -
ef-puzl            EF.PUZL           6F53 TR - -   - - -
ef-maxpuzl         EF.MAXPUZL        6F54 TR - -   - - -
ef-hrpdcap         EF.HRPDCAP        6F56 TR - 3   - - -
ef-hrpdupp         EF.HRPDUPP        6F57 TR - -   - - -
ef-csspr           EF.CSSPR          6F58 TR - 1   - - -
ef-atc             EF.ATC            6F59 TR - 1   - - -
ef-eprl            EF.EPRL           6F5A TR - -   - - -
ef-bcsmscfg        EF.BCSMScfg       6F5B TR - -   - - -
ef-bcsmspref       EF.BCSMSpref      6F5C TR - -   - - -
ef-bcsmstable      EF.BCSMStable     6F5D LF - -   - - -
ef-bcsmsp          EF.BCSMSP         6F5E LF - -   - - -
ef-bakpara         EF.BAKPARA        6F63 LF - -   - - -
ef-upbakpara       EF.UpBAKPARA      6F64 LF - -   - - -
ef-mmsn            EF.MMSN           6F65 LF - -   - - -
ef-ext8            EF.EXT8           6F66 LF - -   - - -
ef-mmsicp          EF.MMSICP         6F67 TR - -   - - -
ef-mmsup           EF.MMSUP          6F68 LF - -   - - -
ef-mmsucp          EF.MMSUCP         6F69 TR - -   - - -
ef-auth-capability EF.AuthCapability 6F6A TR - -   - - -
ef-3gcik           EF.3GCIK          6F6B TR - 33  - - -
ef-dck             EF.DCK            6F6C TR - -   - - -
ef-gid1            EF.GID1           6F6D TR - -   - - -
ef-gid2            EF.GID2           6F6E TR - -   - - -
ef-cdmacnl         EF.CDMACNL        6F6F TR - -   - - -
ef-sf-euimid       EF.SF_EUIMID      6F74 TR - 7   - - -
ef-est             EF.EST            6F75 TR - -   - - -
ef-hidden-key      EF.HiddenKey      6F76 TR - -   - - -
ef-lcsver          EF.LCSVER         6F77 TR - -   - - -
ef-lcscp           EF.LCSCP          6F78 TR - -   - - -
ef-sdn             EF.SDN            6F79 LF - -   - - -
ef-ext2            EF.EXT2           6F7A LF - -   - - -
ef-ext3            EF.EXT3           6F7B LF - -   - - -
ef-ici             EF.ICI            6F7C CY - -   - - -
ef-oci             EF.OCI            6F7D CY - -   - - -
ef-ext5            EF.EXT5           6F7E LF - -   - - -
ef-ccp2            EF.CCP2           6F7F LF - -   - - -
ef-applabels       EF.AppLabels      6F80 TR - -   - - -
ef-model           EF.Model          6F81 TR - 126 - - -
ef-rc              EF.RC             6F82 TR - -   - - -
ef-smscap          EF.SMSCAP         6F83 TR - -   - - -
ef-mipflags        EF.MIPFlags       6F84 TR - -   - - -
ef-3gpduppext      EF.3GPDUPPExt     6F85 TR - -   - - -
ef-ipv6cap         EF.IPV6CAP        6F87 TR - -   - - -
ef-tcpconfig       EF.TCPConfig      6F88 TR - -   - - -
ef-dgc             EF.DGC            6F89 TR - -   - - -
ef-wapbrowsercp    EF.WAPBrowserCP   6F8A TR - -   - - -
ef-wapbrowserbm    EF.WAPBrowserBM   6F8B LF - -   - - -
ef-mmsconfig       EF.MMSConfig      6F8C TR - -   - - -
ef-jdl             EF.JDL            6F8D TR - -   - - -
"""


def _template(
    arc: str, name: str, pe: str, base: str, by_default: bool, table: str
) -> ProfileTemplate:
    return ProfileTemplate(f"{TCA_TEMPLATE_ARC}.{arc}", name, pe, base, by_default, _parse(table))


TEMPLATES: Mapping[str, ProfileTemplate] = MappingProxyType(
    {
        t.oid: t
        for t in (
            _template("1", "MF", "mf", "MF", True, _MF),
            _template("3", "DF.TELECOM", "telecom", "MF", False, _TELECOM),
            _template("4", "ADF.USIM", "usim", "ADF", True, _USIM),
            _template("5", "ADF.USIM (optional files)", "opt-usim", "USIM", False, _OPT_USIM),
            _template("7", "DF.GSM-ACCESS", "gsm-access", "USIM", False, _GSM_ACCESS),
            _template("8", "ADF.ISIM", "isim", "ADF", True, _ISIM),
            _template("9", "ADF.ISIM (optional files)", "opt-isim", "ISIM", False, _OPT_ISIM),
            _template("10", "ADF.CSIM", "csim", "ADF", True, _CSIM),
            _template("11", "ADF.CSIM (optional files)", "opt-csim", "CSIM", False, _OPT_CSIM),
            _template("12", "DF.EAP", "eap", "USIM", False, _EAP),
            _template("13", "DF.5GS", "df-5gs", "USIM", False, _DF_5GS),
            _template("14", "DF.SAIP", "df-saip", "USIM", False, _DF_SAIP),
        )
    }
)
"""The transcribed templates by OID (dotted string)."""

TS48_TEMPLATE_OIDS = frozenset(
    f"{TCA_TEMPLATE_ARC}.{n}" for n in (1, 3, 4, 5, 7, 8, 9, 10, 11, 13, 14)
)
"""The template OIDs the TS.48 packages use (all of them are in :data:`TEMPLATES`)."""

ARR_RULES: Mapping[int, tuple[str, ...]] = MappingProxyType(
    {
        1: ("8001019000", "800102A406830101950108", "800158A40683010A950108"),
        2: ("800101A406830101950108", "80015AA40683010A950108"),
        3: ("80015BA40683010A950108",),
        4: ("8001019000", "80011A9700", "800140A40683010A950108"),
        5: ("800103A406830101950108", "800158A40683010A950108"),
        6: ("800111A406830101950108", "80014AA40683010A950108"),
        7: ("800103A406830101950108", "800158A40683010A950108", "840132A406830101950108"),
        8: ("800101A406830101950108", "800102A406830181950108", "800158A40683010A950108"),
        9: ("8001019000", "80011AA406830101950108", "800140A40683010A950108"),
        10: ("8001019000", "80015AA40683010A950108"),
        11: ("8001019000", "800118A40683010A950108", "8001429700"),
        12: ("800101A406830101950108", "80015A9700"),
        13: ("800113A406830101950108", "800148A40683010A950108"),
        14: ("80015EA40683010A950108",),
    }
)
"""SAIP §9.9 access rules: the expanded-format EF.ARR record (AM/SC DO pairs) of each rule number.

The ARR column of the templates refers to these rule numbers; a profile's own
EF.ARR records carry the actual rules.
"""


def template_for(oid: str) -> ProfileTemplate | None:
    """The template with ``oid`` (dotted), ``None`` if it is not transcribed."""
    return TEMPLATES.get(oid)
