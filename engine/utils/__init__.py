"""pyzmq-compatible helper modules (`engine.utils.monitor`)."""
