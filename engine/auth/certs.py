"""CURVE certificates in libzmq's file format (czmq's zcert, written in ZPL, ZeroMQ RFC 4).

A key pair lives in two files: `NAME.key` holds the public key (safe to hand out) and
`NAME.key_secret` holds both keys (mode 0600). Each has a `metadata` section of free-form
name = "value" pairs and a `curve` section with `public-key` (and `secret-key`) as Z85 text:

    metadata
        name = "front"
    curve
        public-key = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7"

pyzmq's names and shapes: create_certificates, load_certificate, load_certificates.
"""

from __future__ import annotations

import datetime
import errno
import os
from dataclasses import dataclass, field
from pathlib import Path

from ..security import z85
from ..security.keys import Z85_KEY_SIZE, curve_keypair

PUBLIC_SUFFIX = ".key"
SECRET_SUFFIX = ".key_secret"
#: ZPL indents each level by four spaces.
INDENT = 4
#: A certificate is a few hundred bytes; refuse to read anything absurdly larger.
MAX_CERTIFICATE_SIZE = 64 * 1024


class CertificateError(ValueError):
    """A file that is not a usable certificate."""


class CertificateFileError(CertificateError, OSError):
    """A certificate file or folder that cannot be read: an OSError too, with its errno, as
    pyzmq lets open() and listdir() raise it (code written for pyzmq catches OSError)."""

    @classmethod
    def of(cls, message: str, code: int | None, path: object) -> CertificateFileError:
        error = cls(message)
        error.errno, error.filename = code, str(path)
        return error

    def __str__(self) -> str:
        return str(self.args[0])  # the message (OSError's own form would repeat the path)


@dataclass(frozen=True, slots=True)
class Certificate:
    public_key: bytes  # Z85 text, 40 bytes
    secret_key: bytes | None = None
    metadata: dict[str, str] = field(default_factory=dict)


def create_certificates(
    key_dir: str | os.PathLike[str], name: str, metadata: dict[str, str] | None = None
) -> tuple[str, str]:
    """Make a new key pair and write NAME.key and NAME.key_secret in `key_dir` (made if need be).

    Returns the two file names (public, secret), as pyzmq does.
    """
    public, secret = curve_keypair()
    folder = Path(key_dir)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CertificateError(f"cannot create {folder}: {exc.strerror}") from None
    base = folder / name
    public_file = str(base) + PUBLIC_SUFFIX
    secret_file = str(base) + SECRET_SUFFIX
    meta = metadata or {}
    _write(public_file, _render(public, None, meta), mode=0o644)
    _write(secret_file, _render(public, secret, meta), mode=0o600)
    return public_file, secret_file


def load_certificate(filename: str | os.PathLike[str]) -> tuple[bytes, bytes | None]:
    """(public key, secret key or None) from a certificate file, as Z85 bytes."""
    cert = read_certificate(filename)
    return cert.public_key, cert.secret_key


def load_certificates(directory: str | os.PathLike[str] = ".") -> dict[bytes, bool]:
    """The public keys of every NAME.key in `directory`, as {z85_key: True}."""
    folder = Path(directory)
    if not folder.is_dir():
        missing = errno.ENOTDIR if folder.exists() else errno.ENOENT
        raise CertificateFileError.of(
            f"{directory} is not a directory of certificates", missing, directory
        )
    keys: dict[bytes, bool] = {}
    for path in sorted(folder.iterdir()):
        if path.name.endswith(PUBLIC_SUFFIX) and path.is_file():
            keys[read_certificate(path).public_key] = True
    return keys


def read_certificate(filename: str | os.PathLike[str]) -> Certificate:
    path = Path(filename)
    try:
        with path.open("rb") as fh:
            raw = fh.read(MAX_CERTIFICATE_SIZE + 1)
    except OSError as exc:
        message = f"cannot read certificate {path}: {exc.strerror}"
        raise CertificateFileError.of(message, exc.errno, path) from None
    if len(raw) > MAX_CERTIFICATE_SIZE:
        raise CertificateError(f"{path} is too large to be a certificate")
    try:
        tree = parse_zpl(raw.decode("utf-8"))
    except (UnicodeDecodeError, CertificateError) as exc:
        raise CertificateError(f"{path}: {exc}") from None
    curve = tree.get("curve", {})
    public = _key(curve.get("public-key"), path, "public-key")
    if public is None:
        raise CertificateError(f"no public key in {path}")
    secret = _key(curve.get("secret-key"), path, "secret-key")
    metadata = {k: v for k, v in tree.get("metadata", {}).items() if isinstance(v, str)}
    return Certificate(public, secret, metadata)


def _key(value: object, path: Path, name: str) -> bytes | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) != Z85_KEY_SIZE:
        raise CertificateError(f"{name} in {path} is not a 40-character Z85 key")
    raw = value.encode("ascii", "replace")
    try:
        z85.decode(raw)
    except ValueError:
        raise CertificateError(f"{name} in {path} is not valid Z85") from None
    return raw


# -- ZPL (RFC 4), as much as certificates use ------------------------------------------------


def parse_zpl(text: str) -> dict:
    """A ZPL document as nested dicts: `name = value` gives a string, a bare `name` a section."""
    root: dict = {}
    stack: list[dict] = [root]  # stack[level] is the section that level's lines belong to
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        spaces = len(line) - len(line.lstrip(" "))
        if spaces % INDENT or line[spaces : spaces + 1] == "\t":
            raise CertificateError(f"line {number}: indent by {INDENT} spaces")
        level = spaces // INDENT
        if level >= len(stack):
            raise CertificateError(f"line {number}: indented too far")
        del stack[level + 1 :]
        name, eq, value = stripped.partition("=")
        name = name.strip()
        if not name:
            raise CertificateError(f"line {number}: a name is missing")
        if eq:
            stack[level][name] = _zpl_value(value.strip(), number)
        else:
            section: dict = {}
            stack[level][name] = section
            stack.append(section)
    return root


def _zpl_value(value: str, number: int) -> str:
    if value[:1] in ("'", '"'):
        quote = value[0]
        end = value.find(quote, 1)
        if end < 0:
            raise CertificateError(f"line {number}: unterminated quoted value")
        return value[1:end]
    return value.split("#", 1)[0].strip()


def _render(public: bytes, secret: bytes | None, metadata: dict[str, str]) -> str:
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    if secret is None:
        head = [
            "#   CURVE public certificate (Crossroads, " + stamp + ")",
            "#   Safe to share: peers use it to recognise this key pair's owner.",
        ]
    else:
        head = [
            "#   CURVE SECRET certificate (Crossroads, " + stamp + ")",
            "#   Keep this file private: whoever reads it can act as its owner.",
        ]
    lines = [*head, "", "metadata"]
    for name, value in metadata.items():
        if not name or any(ch in name for ch in ' ="\n#'):
            raise CertificateError(f"metadata name {name!r} cannot be written in ZPL")
        if '"' in value or "\n" in value:
            raise CertificateError(f"metadata value for {name!r} cannot hold quotes or newlines")
        lines.append(f'    {name} = "{value}"')
    lines.append("curve")
    lines.append(f'    public-key = "{public.decode("ascii")}"')
    if secret is not None:
        lines.append(f'    secret-key = "{secret.decode("ascii")}"')
    return "\n".join(lines) + "\n"


def _write(filename: str, text: str, mode: int) -> None:
    # Create with the final permissions, so a secret is never readable by others, even briefly.
    try:
        fd = os.open(filename, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    except OSError as exc:
        raise CertificateError(f"cannot write {filename}: {exc.strerror}") from None
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.chmod(filename, mode)
