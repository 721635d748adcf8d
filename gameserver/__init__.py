"""Crossroads game logic: protocol, world, store, commands and the worker-facing service.

Nothing here does networking; a worker feeds requests to :class:`gameserver.service.GameService`
and publishes the events it returns.
"""
