"""The router: one stream per request/response exchange, the route table, retries, timeouts, shadows, local replies."""
