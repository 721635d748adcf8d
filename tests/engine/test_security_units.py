"""Z85, keys, certificate files and the ZAP codec: the building blocks of engine security."""

from __future__ import annotations

import errno
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import zmq
import zmq.auth
from hypothesis import given
from hypothesis import strategies as st
from zmq.utils import z85 as pyzmq_z85

import engine
import engine.auth
from engine.auth import CertificateError, create_certificates, load_certificate, load_certificates
from engine.auth.certs import parse_zpl
from engine.security import z85
from engine.security.commands import ProtocolError
from engine.security.keys import MISSING_PYNACL, curve_keypair, curve_public, key_bytes
from engine.security.zap import ZapReply, ZapRequest, ZapRequestError

REPO = Path(__file__).resolve().parents[2]

# -- Z85 --------------------------------------------------------------------------------------------


def test_z85_rfc32_vector() -> None:
    raw = bytes([0x86, 0x4F, 0xD2, 0x6F, 0xB5, 0x59, 0xF7, 0x5B])
    assert z85.encode(raw) == b"HelloWorld"
    assert z85.decode("HelloWorld") == raw


@given(st.binary(max_size=64).map(lambda b: b[: len(b) // 4 * 4]))
def test_z85_matches_pyzmq_and_round_trips(raw: bytes) -> None:
    text = z85.encode(raw)
    assert text == pyzmq_z85.encode(raw)
    assert z85.decode(text) == raw


@pytest.mark.parametrize("bad", [b"abc", b"Hello World", "héllo", b"%%%%%"])
def test_z85_rejects_bad_text(bad: bytes | str) -> None:
    with pytest.raises(ValueError):
        z85.decode(bad)


def test_z85_rejects_odd_lengths() -> None:
    with pytest.raises(ValueError):
        z85.encode(b"abc")


# -- keys -------------------------------------------------------------------------------------------


def test_curve_keypair_is_z85_and_works_with_libzmq() -> None:
    public, secret = curve_keypair()
    assert len(public) == len(secret) == 40
    assert curve_public(secret) == public
    assert zmq.curve_public(secret) == public
    assert engine.curve_public(secret) == public
    assert engine.z85_decode(engine.z85_encode(b"1234")) == b"1234"


@pytest.mark.parametrize("lib", [engine, zmq], ids=["engine", "pyzmq"])
def test_curve_public_of_a_bad_secret(lib: Any) -> None:
    """pyzmq: 40 characters that are not Z85 are libzmq's EINVAL, a wrong length a ValueError."""
    with pytest.raises(lib.ZMQError) as bad_text:
        lib.curve_public(b"~" * 40)
    assert bad_text.value.errno == errno.EINVAL
    with pytest.raises(ValueError):
        lib.curve_public(b"x" * 39)


def test_key_bytes_accepts_both_spellings() -> None:
    public, _ = curve_keypair()
    raw = z85.decode(public)
    assert key_bytes(public) == key_bytes(public + b"\x00") == key_bytes(raw) == raw
    assert key_bytes(public.decode()) == raw
    for bad in (b"short", b"#" * 40, b"y" * 33):  # "#####" overflows 32 bits
        with pytest.raises(ValueError):
            key_bytes(bad)


def test_curve_without_pynacl_names_the_extra() -> None:
    """A Python that cannot import nacl gets one clear error, not an ImportError traceback."""
    code = (
        "import sys; sys.modules['nacl'] = None\n"
        "import engine\n"
        "assert not engine.has('curve')\n"
        "try:\n"
        "    engine.curve_keypair()\n"
        "except engine.ZMQError as exc:\n"
        "    print(exc.errno == engine.ENOTSUP, exc)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("True ")
    assert out.stdout.strip().endswith(MISSING_PYNACL)
    assert "crossroads[curve]" in MISSING_PYNACL


def test_has_curve_with_pynacl() -> None:
    assert engine.has("curve")


# -- certificates -----------------------------------------------------------------------------------


def test_certificates_round_trip_and_permissions(tmp_path: Path) -> None:
    public_file, secret_file = create_certificates(tmp_path, "front", {"role": "front"})
    assert Path(public_file).name == "front.key"
    assert Path(secret_file).name == "front.key_secret"
    assert stat.S_IMODE(os.stat(secret_file).st_mode) == 0o600
    public, secret = load_certificate(secret_file)
    assert curve_public(secret) == public
    assert load_certificate(public_file) == (public, None)
    assert load_certificates(tmp_path) == {public: True}
    assert "secret-key" not in Path(public_file).read_text()


def test_certificates_cross_with_pyzmq(tmp_path: Path) -> None:
    ours = create_certificates(tmp_path, "ours")
    theirs = zmq.auth.create_certificates(tmp_path, "theirs")
    for public_file, secret_file in (ours, theirs):
        assert load_certificate(secret_file) == zmq.auth.load_certificate(secret_file)
        assert load_certificate(public_file) == zmq.auth.load_certificate(public_file)
    assert load_certificates(tmp_path) == zmq.auth.load_certificates(tmp_path)


@pytest.mark.parametrize("auth", [engine.auth, zmq.auth], ids=["engine", "pyzmq"])
def test_a_certificate_that_cannot_be_read_is_an_oserror(auth: Any, tmp_path: Path) -> None:
    """pyzmq lets open() and listdir() raise: code written for it catches OSError. The
    engine's error is also a CertificateError (a ValueError), with its one-line message."""
    with pytest.raises(OSError) as missing:
        auth.load_certificate(tmp_path / "missing.key")
    with pytest.raises(OSError) as nowhere:
        auth.load_certificates(tmp_path / "nowhere")
    if auth is engine.auth:  # (pyzmq's own OSError for a missing file has no errno)
        assert missing.value.errno == nowhere.value.errno == errno.ENOENT


def test_zpl_sections_and_values() -> None:
    text = (
        '# comment\n\nmetadata\n    name = "a = b"   # not a comment inside quotes\n'
        "    bare = plain value # comment\ncurve\n    public-key = 'k'\n"
    )
    assert parse_zpl(text) == {
        "metadata": {"name": "a = b", "bare": "plain value"},
        "curve": {"public-key": "k"},
    }


@pytest.mark.parametrize(
    "text",
    [
        'curve\n      public-key = "x"\n',  # six spaces
        'curve\n        public-key = "x"\n',  # two levels under one section
        'curve\n    public-key = "unterminated\n',
        'curve\n    = "x"\n',
        'curve\n    public-key = "not forty characters"\n',
        "metadata\n",  # no public key at all
    ],
)
def test_bad_certificates_are_refused(tmp_path: Path, text: str) -> None:
    path = tmp_path / "bad.key"
    path.write_text(text)
    with pytest.raises(CertificateError):
        load_certificate(path)


def test_certificate_errors_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(CertificateError, match="cannot read certificate"):
        load_certificate(tmp_path / "missing.key")
    with pytest.raises(CertificateError, match="not a directory"):
        load_certificates(tmp_path / "nowhere")
    big = tmp_path / "big.key"
    big.write_bytes(b"#" * 70_000)
    with pytest.raises(CertificateError, match="too large"):
        load_certificate(big)


# -- the ZAP codec ----------------------------------------------------------------------------------


def test_zap_request_frames_round_trip() -> None:
    request = ZapRequest("global", "10.0.0.1", b"id", b"PLAIN", (b"user", b"pw"))
    frames = request.to_frames()
    assert frames == [b"1.0", b"1", b"global", b"10.0.0.1", b"id", b"PLAIN", b"user", b"pw"]
    assert ZapRequest.from_frames(frames) == request


@pytest.mark.parametrize(
    "frames",
    [
        [b"1.0", b"1", b"d", b"a", b"i"],  # too few
        [b"1.0", b"1", b"d", b"a", b"i", b"PLAIN", b"u", b"p", b"extra"],  # too many
        [b"2.0", b"1", b"d", b"a", b"i", b"NULL"],  # version
        [b"1.0", b"1", b"\xff", b"a", b"i", b"NULL"],  # domain not UTF-8
    ],
)
def test_malformed_zap_requests(frames: list[bytes]) -> None:
    with pytest.raises(ZapRequestError):
        ZapRequest.from_frames(frames)


def test_zap_reply_round_trip() -> None:
    reply = ZapReply(200, "OK", "alice", {"Role": b"admin"})
    parsed = ZapReply.from_frames(reply.to_frames())
    assert (parsed.status_code, parsed.user_id, parsed.metadata) == (
        200,
        "alice",
        {"role": b"admin"},
    )


@pytest.mark.parametrize(
    ("frames", "code"),
    [
        ([b"1.0", b"1", b"200", b"OK", b""], engine.PROTOCOL_ERROR_ZAP_MALFORMED_REPLY),
        ([b"1.1", b"1", b"200", b"OK", b"", b""], engine.PROTOCOL_ERROR_ZAP_BAD_VERSION),
        ([b"1.0", b"7", b"200", b"OK", b"", b""], engine.PROTOCOL_ERROR_ZAP_BAD_REQUEST_ID),
        ([b"1.0", b"1", b"201", b"OK", b"", b""], engine.PROTOCOL_ERROR_ZAP_INVALID_STATUS_CODE),
        (
            [b"1.0", b"1", b"200", b"OK", b"", b"\x05oops"],
            engine.PROTOCOL_ERROR_ZAP_INVALID_METADATA,
        ),
    ],
)
def test_malformed_zap_replies_carry_libzmq_codes(frames: list[bytes], code: int) -> None:
    with pytest.raises(ProtocolError) as failure:
        ZapReply.from_frames(frames)
    assert failure.value.value == code


def test_constants_match_pyzmq() -> None:
    names = [n for n in dir(zmq) if n.startswith("PROTOCOL_ERROR_")]
    names += ["NULL", "PLAIN", "CURVE", "GSSAPI"]
    for name in names:
        assert getattr(engine, name) == getattr(zmq, name), name


def test_create_certificates_makes_its_folder_or_says_why_not(tmp_path: Path) -> None:
    public_file, _ = create_certificates(tmp_path / "new" / "keys", "a")
    assert Path(public_file).is_file()
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(CertificateError, match="cannot create"):
        create_certificates(blocker / "keys", "b")
