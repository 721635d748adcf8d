"""Regional relays: XSUB→XPUB forwarding (and an optional ROUTER↔DEALER actions proxy) that
sends each event over the data centre's link once per region instead of once per player."""
