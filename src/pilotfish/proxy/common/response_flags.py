"""Envoy's response flags (StreamInfo::ResponseFlag): why a stream ended as it did, as bits."""

from __future__ import annotations

# Response flags, in Envoy's order (StreamInfo::ResponseFlag).
UH, UT, UF, UC, UO, NR, DC, URX, DPE, UPE, NC, DI, FI, SI, DT, LH = (1 << i for i in range(16))
_FLAG_NAMES = ((LH, "LH"), (UH, "UH"), (UT, "UT"), (UF, "UF"), (UC, "UC"), (UO, "UO"), (NR, "NR"),
               (DI, "DI"), (FI, "FI"), (DC, "DC"), (URX, "URX"), (SI, "SI"), (DPE, "DPE"), (UPE, "UPE"),
               (NC, "NC"), (DT, "DT"))
#: Envoy's short flag names → bits (the response_flag_filter's names).
FLAG_BITS = {name: bit for bit, name in _FLAG_NAMES}


def flags_string(flags: int) -> str:
    if not flags:
        return "-"
    return ",".join(name for bit, name in _FLAG_NAMES if flags & bit)
