"""xDS, the protocol between control plane and proxies: Envoy's v3 ADS over gRPC.

Beside the proxy, not inside it (it imports nothing from ``pilotfish.proxy``): type URLs and
resource names (type_urls.py), per-type ACK/NACK state (state.py), the accepted resources as
immutable snapshots (resources.py), the ADS client with its jittered back-off (client.py,
backoff.py) and an in-process fake ADS server for tests (testing.py). The control plane's ADS
server belongs here too.
"""
