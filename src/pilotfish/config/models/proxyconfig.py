"""ProxyConfig (networking.istio.io/v1beta1): per-workload proxy settings."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StringConstraints

from ..base import IstioModel
from ..kind_info import KindInfo
from .common import WorkloadSelector
from .gateway import NETWORKING


class ProxyImage(IstioModel):
    """The proxy image flavour (``default``, ``debug``, ``distroless``)."""

    image_type: str | None = None


class ProxyConfig(IstioModel):
    """Worker concurrency, environment variables and image of the selected proxies."""

    selector: WorkloadSelector | None = None
    concurrency: Annotated[int, Field(ge=0, le=2**31 - 1)] | None = None
    environment_variables: dict[str, Annotated[str, StringConstraints(max_length=2048)]] | None = None
    image: ProxyImage | None = None


KINDS = [KindInfo(group=NETWORKING, kind="ProxyConfig", versions=("v1beta1",), model=ProxyConfig, plural="proxyconfigs")]
