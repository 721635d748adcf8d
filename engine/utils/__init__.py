"""pyzmq-compatible helper modules (`engine.utils.monitor`, `engine.utils.z85`,
`engine.utils.jsonapi`)."""
