"""``pilotfish x explain``: replay one request through a proxy's configuration with the proxy's
own compiled matchers, and say where it goes and why (listener, filter chain, route, cluster,
endpoints), or why it goes nowhere."""
