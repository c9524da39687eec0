"""The builder against pySim's BSP trace of a third-party SM-DP+ (``bsp-pysim-mode51.json``).

The trace holds the session keys, the PPKs and the protected segments of a real BPP:
ConfigureISDP ('87'), StoreMetadata ('88'), ReplaceSessionKeys ('87') under the session
keys, then two maximal '86' segments under the PPKs.  ``protect_bpp_segments`` given the
same keys and plaintexts must produce the same segments octet for octet; the plaintexts of
the StoreMetadataRequest and ReplaceSessionKeysRequest must be what our encoders produce
from the native values they carry.  (The trace has no InitialiseSecureChannelRequest or
ECDH keys, so the first block is not covered by it.)
"""

from __future__ import annotations

import json
from typing import Any

from rspfed import es8p
from rspfed.crypto.kdf import SessionKeys
from tests.paths import REPO

h = bytes.fromhex
V: dict[str, Any] = json.loads(
    (REPO / "tests" / "crypto" / "data" / "bsp-pysim-mode51.json").read_text()
)
KEYS = SessionKeys(
    h(V["session_keys"]["initial_mcv"]),
    h(V["session_keys"]["s_enc"]),
    h(V["session_keys"]["s_mac"]),
)
PPK = SessionKeys.from_replace_session_keys(
    h(V["ppk"]["initial_mcv"]), h(V["ppk"]["ppk_enc"]), h(V["ppk"]["ppk_mac"])
)
configure, metadata, rsk = (h(s["data"]) for s in V["session_segments"])
seg87, seg88, seg87b = (h(s["segment"]) for s in V["session_segments"])
profile_part = b"".join(h(s["data"]) for s in V["ppk_segments"])
seg86 = tuple(h(s["segment"]) for s in V["ppk_segments"])


def test_store_metadata_request_encodes_like_the_trace() -> None:
    assert metadata == es8p.store_metadata_request(
        h("98001032547698103214"), "GSMA_TEST", "GSMA_TEST_PROFILE", profile_class="test"
    )


def test_replace_session_keys_request_encodes_like_the_trace() -> None:
    assert es8p.replace_session_keys_request(PPK) == rsk


def test_configure_isdp_default_is_the_trace_value() -> None:
    assert configure == es8p.DEFAULT_CONFIGURE_ISDP


def test_ppp_segments_match_the_trace() -> None:
    """The profile is cut by size: 1007 plaintext octets per maximal '86' segment."""
    ppp = es8p.protect_profile_package(profile_part, PPK)
    assert ppp.segments == seg86


def test_bpp_segments_match_the_trace() -> None:
    ppp = es8p.protect_profile_package(profile_part, PPK)
    segments = es8p.protect_bpp_segments(KEYS, configure, metadata, ppp)
    assert segments.first_sequence_of_87 == (seg87,)
    assert segments.sequence_of_88 == (seg88,)
    assert segments.second_sequence_of_87 == (seg87b,)
    assert segments.sequence_of_86 == seg86
