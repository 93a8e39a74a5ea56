"""Shops' discount codes and customers' loyalty fields in memory, with failures to order: the same promises as
the real adapters."""

from __future__ import annotations

from dataclasses import dataclass, field

from loyalty.errors import ShopRefusedError
from loyalty.ports.shops import CodeRequest, CustomerLabels, RefundedLine, ShopCode


@dataclass
class InMemoryShopCodes:
    codes: dict[tuple[str, str], CodeRequest] = field(default_factory=dict)  # (shop, code) -> what was asked
    failures: list[Exception] = field(default_factory=list)  # raised in order (ShopRetryableError, ShopRefusedError)
    calls: int = 0

    def create(self, request: CodeRequest) -> ShopCode:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        self.codes.setdefault((request.shop, request.code), request)
        return ShopCode(
            f"{request.shop}/{request.code}", f"https://{request.shop.partition(':')[2]}/discount/{request.code}"
        )

    def remove(self, shop: str, shop_code_id: str) -> None:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        self.codes.pop((shop, shop_code_id.rpartition("/")[2]), None)

    def has(self, shop: str, code: str) -> bool:
        return (shop, code) in self.codes


@dataclass
class InMemoryShopRefunds:
    refunds: dict[tuple[str, str, str], dict[str, RefundedLine]] = field(default_factory=dict)  # (shop, order, refund)
    failures: list[Exception] = field(default_factory=list)
    calls: int = 0

    def refund_lines(self, shop: str, order_id: str, refund_id: str) -> dict[str, RefundedLine]:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        if (shop, order_id, refund_id) not in self.refunds:
            raise ShopRefusedError(f"{shop} has no refund {refund_id} of order {order_id}")
        return dict(self.refunds[(shop, order_id, refund_id)])


@dataclass
class InMemoryShopCustomers:
    labels: dict[tuple[str, str], CustomerLabels] = field(default_factory=dict)  # (shop, customer) -> the latest
    failures: list[Exception] = field(default_factory=list)
    calls: int = 0

    def label(self, labels: CustomerLabels) -> None:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        self.labels[(labels.shop, labels.customer_id)] = labels
