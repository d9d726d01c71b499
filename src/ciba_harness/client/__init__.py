"""The client layer: the façade over HTTP (httpx), the notification receiver, TLS, device drivers
and endpoint health. It carries the core; it judges nothing itself."""
