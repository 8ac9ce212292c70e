"""The data plane: an Envoy-v3-configured HTTP/1.1 proxy (Envoy's role in the mesh).

The bootstrap is parsed into xds-protos messages (:mod:`.bootstrap`), checked against the
supported subset (:mod:`.support`), and compiled once into plain Python objects
(:mod:`.compile`). The request path (:mod:`.downstream`, :mod:`.stream`, :mod:`.upstream`)
never touches protobuf.
"""
