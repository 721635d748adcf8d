"""ZAP authentication (RFC 27) and CURVE certificates, in pyzmq's `zmq.auth` shape.

from engine.auth.thread import ThreadAuthenticator      # sync face
from engine.auth.asyncio import AsyncioAuthenticator    # asyncio face
from engine.auth import create_certificates, load_certificate, load_certificates
"""

from __future__ import annotations

from .base import CURVE_ALLOW_ANY, Authenticator
from .certs import (
    Certificate,
    CertificateError,
    create_certificates,
    load_certificate,
    load_certificates,
    read_certificate,
)

__all__ = [
    "CURVE_ALLOW_ANY",
    "Authenticator",
    "Certificate",
    "CertificateError",
    "create_certificates",
    "load_certificate",
    "load_certificates",
    "read_certificate",
]
