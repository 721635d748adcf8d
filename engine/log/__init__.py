"""Logging over ZeroMQ, as pyzmq's zmq.log: see `handlers`."""
