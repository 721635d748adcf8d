// One zeromq.js socket driven over stdin/stdout by the interop tests (tests/peers/jspeer.py).
//
//   node peer.js TYPE ENDPOINT bind|connect [OPTION=VALUE ...]
//
// TYPE is a draft socket: radio, dish, server, client, scatter, gather, dgram, peer, channel.
// Prints one JSON object per line: {"event":"ready","endpoint":...} once bound or connected,
// then {"event":"message","frames":[hex...],"group":hex,"routing_id":n} for each message it
// receives. Reads one JSON command per line on stdin:
//   {"send":[hex...],"group":hex}     RADIO
//   {"send":[hex...],"routing_id":n}  SERVER, PEER
//   {"send":[hex...]}                 the others
//   {"join":hex} / {"leave":hex}      DISH
// and answers each with {"event":"done"} (or {"event":"error","message":...}). Exits when
// stdin closes.
"use strict";

const zmq = require("zeromq/draft");
const native = require("zeromq/lib/native");
const util = require("zeromq/lib/util");
const readline = require("readline");

// libzmq 4.3.5 has PEER (19) and CHANNEL (20); zeromq.js builds them but exports no class.
class Peer extends native.Socket {
  constructor(options) {
    super(19, options);
  }
}
util.allowMethods(Peer.prototype, ["send", "receive"]);
class Channel extends native.Socket {
  constructor(options) {
    super(20, options);
  }
}
util.allowMethods(Channel.prototype, ["send", "receive"]);

const TYPES = {
  radio: zmq.Radio,
  dish: zmq.Dish,
  server: zmq.Server,
  client: zmq.Client,
  scatter: zmq.Scatter,
  gather: zmq.Gather,
  dgram: zmq.Datagram,
  peer: Peer,
  channel: Channel,
};
const SEND_ONLY = new Set(["radio", "scatter"]);

function emit(obj) {
  process.stdout.write(JSON.stringify(obj) + "\n");
}

async function readLoop(sock) {
  for (;;) {
    let parts;
    try {
      parts = await sock.receive();
    } catch (e) {
      return; // closed
    }
    // Readable sockets resolve to [frame..., options?]: options carry group / routingId.
    const frames = [];
    const out = { event: "message" };
    for (const p of parts) {
      if (Buffer.isBuffer(p)) frames.push(p.toString("hex"));
      else if (p && typeof p === "object") {
        if (p.group !== undefined) out.group = Buffer.from(p.group).toString("hex");
        if (p.routingId !== undefined) out.routing_id = p.routingId;
      }
    }
    out.frames = frames;
    emit(out);
  }
}

async function main() {
  const [type, endpoint, mode, ...rest] = process.argv.slice(2);
  const Type = TYPES[type];
  if (!Type || !["bind", "connect"].includes(mode)) {
    process.stderr.write("usage: node peer.js TYPE ENDPOINT bind|connect [OPTION=VALUE ...]\n");
    process.exit(2);
  }
  const options = {};
  for (const kv of rest) {
    const [k, v] = kv.split("=");
    options[k] = /^-?\d+$/.test(v) ? Number(v) : v;
  }
  const sock = new Type(options);
  if (mode === "bind") await sock.bind(endpoint);
  else sock.connect(endpoint);
  emit({ event: "ready", endpoint: sock.lastEndpoint || endpoint });
  if (!SEND_ONLY.has(type)) readLoop(sock);

  const rl = readline.createInterface({ input: process.stdin });
  for await (const line of rl) {
    if (!line.trim()) continue;
    try {
      const cmd = JSON.parse(line);
      if (cmd.join !== undefined) {
        sock.join(Buffer.from(cmd.join, "hex"));
      } else if (cmd.leave !== undefined) {
        sock.leave(Buffer.from(cmd.leave, "hex"));
      } else if (cmd.send !== undefined) {
        const frames = cmd.send.map((h) => Buffer.from(h, "hex"));
        const msg = frames.length === 1 ? frames[0] : frames;
        if (cmd.group !== undefined) await sock.send(msg, { group: Buffer.from(cmd.group, "hex") });
        else if (cmd.routing_id !== undefined) await sock.send(msg, { routingId: cmd.routing_id });
        else await sock.send(msg);
      }
      emit({ event: "done" });
    } catch (e) {
      emit({ event: "error", message: String(e && e.message) });
    }
  }
  sock.close();
  process.exit(0);
}

main().catch((e) => {
  process.stderr.write(String((e && e.stack) || e) + "\n");
  process.exit(1);
});
