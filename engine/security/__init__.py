"""ZeroMQ security for the engine: the NULL, PLAIN and CURVE mechanisms, ZAP and Z85.

Everything here is sans-I/O (bytes and commands in, commands and events out), so each rule is
testable without sockets:

| module | what it knows |
| --- | --- |
| commands | command bodies, metadata, ProtocolError (with libzmq's monitor event and code) |
| mechanism | the interface the codec (engine/zmtp.py) drives during a handshake |
| null, plain, curve | the handshakes of RFC 23/37, RFC 24 and RFC 25/26 |
| curve_message | CURVE's traffic phase: one sealed MESSAGE per frame |
| zap | RFC 27 requests and replies |
| keys, z85 | CURVE keys (PyNaCl, imported on first use) and RFC 32 text |
| options | the socket options, with libzmq's side effects, and the mechanism they choose |

The ZAP handler itself (an authenticator in pyzmq's `zmq.auth` shape) is engine.auth.
"""
