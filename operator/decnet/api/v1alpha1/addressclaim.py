"""AddressClaim: internal, one object per held address, named after the address.

Creating the claim is the atomic allocation step: the API server's name uniqueness
makes two concurrent requests for one address end in exactly one winner (409 for the
other), the way Kubernetes allocates Service IPs with IPAddress objects.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field

from decnet.api.v1alpha1 import common
from decnet.api.v1alpha1.common import IpOrCidr, Model


class Holder(Model):
    """The object holding the address (ownerReference-like)."""

    kind: str = Field(description="Kind of the holder: Decky or LAN.", max_length=63)
    name: str = Field(description="Name of the holder.", max_length=253)
    uid: str = Field(description="UID of the holder; a recreated holder is a new holder.")


class AddressClaimSpec(Model):
    """Which address is held, on which LAN, by whom."""

    address: IpOrCidr = Field(description="The held IPv4 address, or subnet (CIDR).")
    lan: str | None = Field(default=None, description="LAN of an IP address claim.")
    holder: Holder = Field(description="Who holds the address.")


class AddressClaim(Model):
    """An address held by a Decky (IP) or a LAN (subnet). Internal to the operator."""

    crd: ClassVar[common.CrdInfo] = common.CrdInfo(
        kind="AddressClaim",
        plural="addressclaims",
        singular="addressclaim",
        printer_columns=(
            common.PrinterColumn("Address", ".spec.address", description="Held address."),
            common.PrinterColumn("LAN", ".spec.lan", description="LAN of an IP claim."),
            common.PrinterColumn("Holder", ".spec.holder.name", description="Holder name."),
            common.AGE_COLUMN,
        ),
        status_subresource=False,
    )

    api_version: Literal["decnet.io/v1alpha1"] = Field(default=common.API_VERSION)
    kind: Literal["AddressClaim"] = Field(default="AddressClaim")
    metadata: dict[str, Any] = Field(default_factory=dict)
    spec: AddressClaimSpec = Field(description="The claim.")
