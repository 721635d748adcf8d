"""pyzmq-compatible helper modules (`engine.utils.monitor`, `engine.utils.z85`)."""
