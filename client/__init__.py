"""Crossroads clients: :mod:`client.session` is the network half (log in, act, follow events)
that terminal clients and load tests build on."""
