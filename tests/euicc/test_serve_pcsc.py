"""``rspfed euicc serve`` as a real card: the CLI server behind pcscd's vpcd reader, and pyscard.

The store is made with the CLI (``rspfed pki init``, ``rspfed euicc create``)
and a real profile is downloaded into it through the ISD-R, as an SM-DP+
would send it: the TS.48 template personalised with TS 35.208 test set 1
(MILENAGE), bound with :mod:`rspfed.es8p`.  Then ``python -m rspfed euicc
serve STORE --vpcd 127.0.0.1:PORT --transmission t0`` runs as a subprocess
and the test is a PC/SC application (pyscard, T=0): ATR, a logical channel,
the ISD-R with GetEID / GetProfilesInfo / EnableProfile over STORE DATA and
61xx + GET RESPONSE, the USIM (EF.IMSI, AUTHENTICATE with the published
RES/CK/IK), a warm reset, ``scriptor``; SIGTERM stops the server and
``rspfed euicc info`` shows the profile enabled.

The same APDU session also runs in-process against :meth:`Euicc.open`'s card
(always, also without pcscd).  The PC/SC half is skipped when pcscd, vpcd or
pyscard is missing, and fails under CI (``CI=true``).
"""

from __future__ import annotations

import contextlib
import json
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

from rspfed import asn1
from rspfed.asn1 import rsp
from rspfed.crypto.milenage import Milenage
from rspfed.euicc.euicc import Euicc
from rspfed.euicc.isdr import ISD_R_AID, EuiccCredential
from rspfed.euicc.uicc import ATR_T0_ONLY, Transmission
from rspfed.euicc.vpcd import VPCD_DEFAULT_PORT
from rspfed.pki.testpki import TestPki
from rspfed.saip.identifiers import encode_iccid
from rspfed.saip.install import install_package, load_profile
from tests.euicc.rsp_helpers import (
    ICCID_DIGITS,
    PIN1,
    SET1,
    download_over_apdus,
    es10,
    milenage_package,
    smdp_world,
)
from tests.euicc.test_vpcd import (
    HAVE_PYSCARD,
    find_reader,
    require_pcsc,
    require_tool,
    vpcd_slot,
)
from tests.paths import REPO

if HAVE_PYSCARD:
    from smartcard.CardConnection import CardConnection
    from smartcard.Exceptions import CardConnectionException, NoCardException
    from smartcard.scard import (
        SCARD_RESET_CARD,
        SCARD_S_SUCCESS,
        SCARD_SCOPE_USER,
        SCARD_STATE_EMPTY,
        SCARD_STATE_PRESENT,
        SCARD_STATE_UNAWARE,
        SCardEstablishContext,
        SCardGetStatusChange,
        SCardReleaseContext,
    )

ICCID = encode_iccid(ICCID_DIGITS)
USIM_AID_PREFIX = bytes.fromhex("A0000000871002")  # 3GPP RID + USIM application code
# EF.IMSI of 001010123456789 (TS 31.102 §4.2.2: length 8, parity nibble 9 = odd, digits
# low nibble first), written out by hand from the spec's coding.
EF_IMSI = bytes.fromhex("080910101032547698")
VERIFY_PIN1 = bytes.fromhex("0020000108") + PIN1 + b"\xff" * (8 - len(PIN1))
SW_OK = b"\x90\x00"
SW_SECURITY_STATUS = b"\x69\x82"
SW_CHANNEL_NOT_SUPPORTED = b"\x68\x81"

Transmit = Callable[[bytes], bytes]


def rspfed(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run the CLI as a user would (``python -m rspfed ...``); exit status checked."""
    done = subprocess.run(
        [sys.executable, "-m", "rspfed", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, (args, done.stdout, done.stderr)
    return done


# --------------------------------------------------------------------------
# The store: made by the CLI, a profile downloaded through the ISD-R


@pytest.fixture(scope="module")
def prepared_store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A store from ``rspfed euicc create`` holding the MILENAGE profile (disabled); its EID."""
    base = tmp_path_factory.mktemp("serve")
    pki_dir, store = base / "pki", base / "euicc.db"
    rspfed("pki", "init", str(pki_dir), "--curve", "nist")
    out = rspfed("euicc", "create", str(store), "--pki", str(pki_dir)).stdout
    package = milenage_package()
    with Euicc.open(
        store, loader=load_profile, installer=lambda p: install_package(p).iccid
    ) as euicc:
        assert euicc.eid in out
        credential = EuiccCredential(
            euicc.store.private_key("euicc-nist"),
            euicc.store.certificate("euicc-nist") or b"",
            euicc.store.certificate("eum-nist") or b"",
        )
        world = smdp_world(TestPki.open(pki_dir), euicc.eid, credential)
        card = euicc.card
        card.power_on()
        assert card.transmit(bytes([0x00, 0xA4, 0x04, 0x00, 16]) + ISD_R_AID)[-2:] == SW_OK
        download_over_apdus(card.transmit, world, package, ICCID)
        eid = euicc.eid
    return store, eid


@pytest.fixture
def store_copy(prepared_store: tuple[Path, str], tmp_path: Path) -> tuple[Path, str]:
    """A fresh copy of the prepared store for one test."""
    source, eid = prepared_store
    copy = tmp_path / "euicc.db"
    shutil.copyfile(source, copy)
    return copy, eid


# --------------------------------------------------------------------------
# The APDU session, as a T=0 PC/SC application runs it


@attrs.define
class T0Terminal:
    """A T=0 terminal application over ``transmit``: collects 61xx answers with GET RESPONSE."""

    raw: Transmit
    log: list[tuple[bytes, bytes]] = attrs.field(factory=list)

    def send(self, apdu: bytes) -> bytes:
        rapdu = self.raw(apdu)
        self.log.append((apdu, rapdu))
        return rapdu

    def exchange(self, apdu: bytes) -> bytes:
        """Data and status word of ``apdu``, following ``61xx`` and ``6Cxx`` (ISO/IEC 7816-4)."""
        channel = apdu[0] & 0x03
        data = b""
        rapdu = self.send(apdu)
        while True:
            sw1, sw2 = rapdu[-2], rapdu[-1]
            if sw1 == 0x6C:
                apdu = apdu[:4] + bytes([sw2])
                rapdu = self.send(apdu)
                continue
            data += rapdu[:-2]
            if sw1 != 0x61:
                return data + rapdu[-2:]
            rapdu = self.send(bytes([channel, 0xC0, 0x00, 0x00, sw2]))

    def get_responses(self) -> int:
        return sum(1 for apdu, _ in self.log if apdu[1] == 0xC0)


def xor(a: bytes, b: bytes) -> bytes:
    return bytes(i ^ j for i, j in zip(a, b, strict=True))


def enable_request(iccid: bytes) -> bytes:
    return asn1.encode(
        rsp.EnableProfileRequest(
            {
                "profileIdentifier": rsp.EnableProfileRequest_profileIdentifier(
                    name="iccid", value=iccid
                ),
                "refreshFlag": True,
            }
        )
    )


def profile_states(terminal: T0Terminal, cla: int) -> dict[bytes, str]:
    answer = es10(terminal.send, bytes.fromhex("BF2D00"), cla=cla)
    listed = asn1.decode(rsp.ProfileInfoListResponse, answer)
    assert listed.name == "profileInfoListOk"
    return {bytes(p["iccid"].native): p["profileState"].native for p in listed.chosen}


def select_usim_and_verify(terminal: T0Terminal) -> None:
    select = bytes([0x00, 0xA4, 0x04, 0x04, len(USIM_AID_PREFIX)]) + USIM_AID_PREFIX
    fcp = terminal.exchange(select)
    assert fcp[-2:] == SW_OK
    assert fcp[0] == 0x62  # FCP template (TS 102 221 §11.1.1.3)
    assert terminal.send(VERIFY_PIN1) == SW_OK


def read_imsi(terminal: T0Terminal) -> bytes:
    assert terminal.exchange(bytes.fromhex("00A4000C026F07")) == SW_OK
    return terminal.exchange(bytes.fromhex("00B0000009"))


def session(terminal: T0Terminal, atr: bytes, warm_reset: Callable[[], bytes], eid: str) -> None:
    """The whole check, given a terminal on a freshly powered card."""
    assert atr == ATR_T0_ONLY
    # A logical channel, and the ISD-R on it (SGP.22 §2.2.3; the LPA's way).
    opened = terminal.send(bytes.fromhex("0070000001"))
    assert opened[1:] == SW_OK
    ch = opened[0]
    assert 1 <= ch <= 3
    select_isdr = bytes([ch, 0xA4, 0x04, 0x00, len(ISD_R_AID)]) + ISD_R_AID
    assert terminal.exchange(select_isdr)[-2:] == SW_OK
    store_cla = 0x80 | ch

    # GetEID (SGP.22 §5.7.20): every answer over T=0 waits for GET RESPONSE
    before = terminal.get_responses()
    answer = es10(terminal.send, bytes.fromhex("BF3E035C015A"), cla=store_cla)
    assert answer == bytes.fromhex("BF3E125A10") + bytes.fromhex(eid)
    assert terminal.get_responses() > before
    # a long answer (EUICCInfo2 with the certificate lists): all of it arrives
    info2 = asn1.decode(rsp.EUICCInfo2, es10(terminal.send, bytes.fromhex("BF2200"), cla=store_cla))
    assert info2["svn"].native
    assert profile_states(terminal, store_cla) == {ICCID: "disabled"}

    # EnableProfile over the logical channel; its answer still arrives after the switch
    answer = es10(terminal.send, enable_request(ICCID), cla=store_cla)
    assert asn1.decode(rsp.EnableProfileResponse, answer)["enableResult"].native == "ok"

    # The enabled profile's USIM on the basic channel
    select_usim_and_verify(terminal)
    assert read_imsi(terminal) == EF_IMSI + SW_OK
    k, opc = bytes.fromhex(SET1["K"]), bytes.fromhex(SET1["OPc"])
    rand, amf = bytes.fromhex(SET1["RAND"]), bytes.fromhex(SET1["AMF"])
    sqn = (2 << 5).to_bytes(6, "big")  # fresh: the card starts at 0
    autn = xor(sqn, bytes.fromhex(SET1["f5"])) + amf + Milenage(k, opc).f1(rand, sqn, amf)
    authenticate = bytes.fromhex("0088008122") + b"\x10" + rand + b"\x10" + autn + b"\x00"
    answer = terminal.exchange(authenticate)
    res, ck, ik = (bytes.fromhex(SET1[f]) for f in ("f2", "f3", "f4"))  # published
    kc = xor(xor(ck[:8], ck[8:]), xor(ik[:8], ik[8:]))  # TS 33.102 c3
    assert answer == b"\xdb\x08" + res + b"\x10" + ck + b"\x10" + ik + b"\x08" + kc + SW_OK

    # PIN1 is disabled in TS.48; ENABLE VERIFICATION (a persistent change) turns it on
    enable_pin1 = bytes.fromhex("0028000108") + PIN1 + b"\xff" * (8 - len(PIN1))
    assert terminal.send(enable_pin1) == SW_OK

    # Warm reset: channels and PIN verification gone, the profile still enabled
    assert warm_reset() == ATR_T0_ONLY
    assert terminal.send(bytes([ch, 0xA4, 0x00, 0x0C, 0x02, 0x3F, 0x00])) == (
        SW_CHANNEL_NOT_SUPPORTED
    )
    select = bytes([0x00, 0xA4, 0x04, 0x0C, len(USIM_AID_PREFIX)]) + USIM_AID_PREFIX
    assert terminal.exchange(select) == SW_OK
    assert read_imsi(terminal) == SW_SECURITY_STATUS  # EF.IMSI: READ needs PIN1
    assert terminal.send(VERIFY_PIN1) == SW_OK
    assert read_imsi(terminal) == EF_IMSI + SW_OK
    assert terminal.exchange(bytes([0x00, 0xA4, 0x04, 0x00, 16]) + ISD_R_AID)[-2:] == SW_OK
    assert profile_states(terminal, 0x80) == {ICCID: "enabled"}


def test_session_in_process(store_copy: tuple[Path, str]) -> None:
    """The session against the card ``serve`` would serve, without PC/SC."""
    store, eid = store_copy
    with Euicc.open(
        store,
        loader=load_profile,
        installer=lambda p: install_package(p).iccid,
        transmission=Transmission.T0,
    ) as euicc:
        card = euicc.card
        session(T0Terminal(card.transmit), card.power_on(), card.reset, eid)
    with Euicc.open(store) as euicc:
        assert [p["state"] for p in euicc.info()["profiles"]] == ["enabled"]


# --------------------------------------------------------------------------
# The real thing: `rspfed euicc serve` behind pcscd


def reader_event(name: str) -> tuple[int, int]:
    """The reader's event state and card event counter (upper 16 bits, pcsc-lite)."""
    hresult, context = SCardEstablishContext(SCARD_SCOPE_USER)
    assert hresult == SCARD_S_SUCCESS
    try:
        hresult, states = SCardGetStatusChange(context, 0, [(name, SCARD_STATE_UNAWARE)])
        assert hresult == SCARD_S_SUCCESS
        event_state = int(states[0][1])
        return event_state, event_state >> 16
    finally:
        SCardReleaseContext(context)


def wait_reader(name: str, flag: int, *, after: int = -1, timeout: float = 20) -> int:
    """Wait until ``name`` shows ``flag`` with an event counter above ``after``; the counter."""
    deadline = time.monotonic() + timeout
    while True:
        state, counter = reader_event(name)
        if state & flag and counter > after:
            return counter
        assert time.monotonic() < deadline, f"reader {name!r} state {state:#x}"
        time.sleep(0.05)


@attrs.frozen
class Server:
    process: subprocess.Popen[bytes]
    log: Path
    reader: Any  # smartcard.reader.Reader

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@contextlib.contextmanager
def serve(store: Path, tmp_path: Path) -> Iterator[Server]:
    """``rspfed euicc serve STORE --vpcd 127.0.0.1:PORT --transmission t0`` in a free slot."""
    require_pcsc()
    with vpcd_slot() as slot:
        reader = find_reader(slot)
        name = str(reader)
        counter = wait_reader(name, SCARD_STATE_EMPTY)  # no card left over in this slot
        log = tmp_path / "serve.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "rspfed",
                    "euicc",
                    "serve",
                    str(store),
                    "--vpcd",
                    f"127.0.0.1:{VPCD_DEFAULT_PORT + slot}",
                    "--transmission",
                    "t0",
                ],
                cwd=REPO,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        server = Server(process, log, reader)
        try:
            try:
                wait_reader(name, SCARD_STATE_PRESENT, after=counter)
            except AssertionError:
                pytest.fail(f"the card never appeared; serve said: {server.output()}")
            yield server
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
            # leave the slot only once pcscd has seen it empty
            with contextlib.suppress(AssertionError):
                wait_reader(name, SCARD_STATE_EMPTY, timeout=5)


def connect_t0(reader: Any) -> Any:
    """A PC/SC connection with T=0, retried while pcscd is still powering the card up."""
    deadline = time.monotonic() + 10
    while True:
        connection = reader.createConnection()
        try:
            connection.connect(protocol=CardConnection.T0_protocol)
            return connection
        except (NoCardException, CardConnectionException):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def pyscard_transmit(connection: Any) -> Transmit:
    def transmit(apdu: bytes) -> bytes:
        data, sw1, sw2 = connection.transmit(list(apdu))
        return bytes(data) + bytes([sw1, sw2])

    return transmit


@pytest.mark.root
@pytest.mark.timeout(90)  # a wedged pcscd must not eat the CI budget
def test_serve_through_pcsc(store_copy: tuple[Path, str], tmp_path: Path) -> None:
    store, eid = store_copy
    with serve(store, tmp_path) as server:
        connection = connect_t0(server.reader)
        try:
            assert connection.getProtocol() == CardConnection.T0_protocol
            atr = bytes(connection.getATR())

            def warm_reset() -> bytes:
                connection.reconnect(
                    protocol=CardConnection.T0_protocol, disposition=SCARD_RESET_CARD
                )
                return bytes(connection.getATR())

            terminal = T0Terminal(pyscard_transmit(connection))
            session(terminal, atr, warm_reset, eid)
            # every 61xx was collected with GET RESPONSE, as a T=0 application must
            assert terminal.get_responses() == sum(1 for _, r in terminal.log if r[-2] == 0x61)
        finally:
            connection.disconnect()

        # scriptor, another PC/SC client: GetEID on the basic channel
        scriptor = require_tool("scriptor")
        script = (
            "00 A4 04 00 10 " + " ".join(f"{b:02X}" for b in ISD_R_AID) + "\n"
            "80 E2 91 00 06 BF 3E 03 5C 01 5A\n"
            "00 C0 00 00 15\n"
        )
        out = subprocess.run(
            [scriptor, "-r", str(server.reader)],
            input=script,
            capture_output=True,
            text=True,
            timeout=20,
            check=True,
        ).stdout
        flat = " ".join(out.split())  # scriptor wraps long answers
        assert "> 80 E2 91 00 06 BF 3E 03 5C 01 5A < 61 15" in flat, out  # 21 octets wait
        eid_spaced = " ".join(eid[i : i + 2] for i in range(0, 32, 2)).upper()
        assert f"< BF 3E 12 5A 10 {eid_spaced} 90 00" in flat, out

        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(10) == 0, server.output()
    assert "stopped" in server.output()

    info = json.loads(rspfed("euicc", "info", str(store), "--json").stdout)
    assert info["eid"] == eid
    assert [(p["iccid"], p["state"]) for p in info["profiles"]] == [
        (ICCID.hex().upper(), "enabled")
    ]
