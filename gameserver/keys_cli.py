"""`crossroads keys`: make and show the cluster's CURVE keys, and say which workers may join.

    crossroads keys init              front, worker and relay pairs (kept if present)
    crossroads keys worker NAME       a new worker pair, admitted on the worker port
    crossroads keys revoke NAME       take a worker's key off the allow-list
    crossroads keys show              every pair's public key and the allow-list

The layout and the policy are in cluster_keys.py.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import engine
from engine.auth import CertificateError

from . import settings as cfg
from .cluster_keys import (
    ALLOWED_WORKERS,
    FRONT,
    PUBLIC_SUFFIX,
    RELAY,
    KeysError,
    allow_worker,
    ensure_cluster,
    ensure_pair,
    read_certificate,
    secret_file,
)

#: A key's name becomes a file name: keep it to a safe alphabet.
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def _name(value: str) -> str:
    if not NAME_PATTERN.fullmatch(value) or value in (FRONT, RELAY):
        raise argparse.ArgumentTypeError(
            f"{value!r}: use letters, digits, '.', '_' or '-' (not 'front' or 'relay')"
        )
    return value


def build_parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Make and show the cluster's CURVE keys (libzmq certificate files). The "
        "front admits on its worker port only the keys in KEYS_DIR/workers/.",
    )
    parser.add_argument(
        "--keys-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help=f"where the keys live (env {cfg.env_name('keys_dir')}; "
        f"default: {cfg.default_keys_dir()})",
    )
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    sub.add_parser("init", help="create the front, worker and relay pairs (existing ones kept)")
    worker = sub.add_parser("worker", help="create a worker pair and admit it on the worker port")
    worker.add_argument("name", type=_name, help="the worker's name (its files: NAME.key...)")
    revoke = sub.add_parser("revoke", help="take a worker's key off the allow-list")
    revoke.add_argument("name", type=_name)
    sub.add_parser("show", help="print every public key and the allow-list")
    return parser


def show(keys_dir: Path) -> None:
    print(f"keys directory {keys_dir}")
    for path in sorted(keys_dir.glob(f"*{PUBLIC_SUFFIX}")):
        print(f"  {path.stem:<16} {read_certificate(path).public_key.decode()}")
    allowed = sorted((keys_dir / ALLOWED_WORKERS).glob(f"*{PUBLIC_SUFFIX}"))
    print(f"admitted on the worker port ({keys_dir / ALLOWED_WORKERS}): {len(allowed)}")
    for path in allowed:
        print(f"  {path.stem:<16} {read_certificate(path).public_key.decode()}")


def run(args: argparse.Namespace, keys_dir: Path) -> int:
    if args.action == "init":
        _, created = ensure_cluster(keys_dir)
        _, new_relay = ensure_pair(keys_dir, RELAY)
        if new_relay:
            created.append(str(secret_file(keys_dir, RELAY)))
        for path in created:
            print(f"created {path}")
        show(keys_dir)
    elif args.action == "worker":
        _, created = ensure_pair(keys_dir, args.name)
        allowed = allow_worker(keys_dir, args.name)
        verb = "created" if created else "kept"
        print(f"{verb} {secret_file(keys_dir, args.name)}; admitted as {allowed}")
        print(
            f"on the worker's machine: crossroads worker --worker-key {secret_file(keys_dir, args.name)} "
            f"--front-key {keys_dir / (FRONT + PUBLIC_SUFFIX)} ..."
        )
    elif args.action == "revoke":
        allowed = keys_dir / ALLOWED_WORKERS / f"{args.name}{PUBLIC_SUFFIX}"
        if not allowed.exists():
            print(f"no worker {args.name!r} on the allow-list ({allowed})", file=sys.stderr)
            return 1
        allowed.unlink()
        print(f"revoked {args.name}: new connections with its key are refused")
    else:
        if not keys_dir.is_dir():
            # A typo in --keys-dir (or a machine that never ran serve) showed an empty listing.
            print(
                f"no keys directory at {keys_dir}: `crossroads keys init` makes one "
                "(`crossroads serve` does on its first run)",
                file=sys.stderr,
            )
            return 1
        show(keys_dir)
    return 0


def main(argv: list[str], prog: str = "crossroads keys") -> int:
    args = build_parser(prog).parse_args(argv)
    try:
        keys_dir = args.keys_dir or cfg.load().keys_dir
        return run(args, Path(keys_dir))
    except (KeysError, CertificateError, cfg.SettingsError, OSError, engine.ZMQError) as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
