"""The connection manager and its codecs: HTTP/1.1 bytes in and out, request and response events up to the router."""
