"""Reliability patterns from the ZeroMQ Guide, wire-true to their RFCs, on the engine.

Each module keeps the protocol logic in plain classes (state in, messages out) and adds thin sync
and asyncio faces; server-side pieces also run standalone: `python -m engine.patterns.NAME --help`.
"""
