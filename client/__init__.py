"""Crossroads clients. :mod:`client.protocol` is the protocol with no I/O (action ids, retries,
reply matching, topic following, gap repair); :mod:`client.session` drives it on asyncio for
players and tests, and the load tester drives the same core on the engine's sync face."""
