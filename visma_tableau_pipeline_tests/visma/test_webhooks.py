"""Visma webhooks: signatures checked in constant time, any body accepted as a hint."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest

from visma_tableau_pipeline.visma.webhooks import (
    WebhookSignatureError,
    announces_deletion,
    notified_keys,
    parse_notification,
    verify_and_parse,
)

SECRET = "subscription-secret"


def signed_headers(body: bytes, secret: str = SECRET) -> dict[str, str]:
    signature = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()
    return {
        "X-Vwd-Signature-V1": signature,
        "x-vwd-notification-id": "n-1",
        "x-vwd-tenant-id": "company-tenant-1",
        "x-vwd-event-id": "e-9",
        "x-vwd-notification-timestamp": "2024-03-01T10:00:00Z",
    }


def test_a_signed_notification_is_parsed_with_entity_and_key():
    body = json.dumps({"event": "Supplier.Changed", "data": {"id": "10001"}}).encode()
    notification = verify_and_parse(body, signed_headers(body), SECRET)
    assert (notification.notification_id, notification.tenant_id, notification.event_id) == ("n-1", "company-tenant-1", "e-9")
    assert notification.timestamp == "2024-03-01T10:00:00Z"
    assert (notification.entity_name, notification.record_key) == ("suppliers", "10001")
    assert notification.raw == body.decode()


@pytest.mark.parametrize(
    ("document", "entity_name"),
    [
        ({"eventType": "customer_changed", "resourceId": "C1"}, "customers"),
        ({"resourceName": "AR Invoice", "event": "Status Changed", "id": "I1"}, "customer_invoices"),
        ({"entity": "PurchaseOrder", "key": "PO1"}, "purchase_orders"),
    ],
)
def test_known_resource_names_map_to_catalogue_entities(document, entity_name):
    notification = parse_notification(json.dumps(document).encode(), {})
    assert notification.entity_name == entity_name and notification.record_key


def test_an_unknown_shape_is_still_accepted_as_a_hint_with_its_raw_body():
    body = b"not json at all"
    notification = verify_and_parse(body, signed_headers(body), SECRET)
    assert notification.entity_name is None and notification.record_key is None
    assert notification.raw == "not json at all" and notification.notification_id == "n-1"


def test_a_forged_or_missing_signature_is_refused():
    body = b'{"event":"Supplier.Changed","id":"10001"}'
    with pytest.raises(WebhookSignatureError, match="does not match"):
        verify_and_parse(body, signed_headers(body, "someone-else"), SECRET)
    with pytest.raises(WebhookSignatureError, match="does not match"):
        verify_and_parse(body + b" ", signed_headers(body), SECRET)
    with pytest.raises(WebhookSignatureError, match="no x-vwd-signature-v1"):
        verify_and_parse(body, {}, SECRET)


@pytest.mark.parametrize("body, deleted", [
    ({"event": "SupplierInvoice", "action": "Delete", "id": "Invoice/1"}, True),
    ({"eventType": "Customer.Deleted", "id": "10002"}, True),
    ({"data": {"operation": "delete"}, "event": "Supplier"}, True),
    ({"event": "SupplierInvoice", "action": "Update", "id": "Invoice/1"}, False),
    ({"event": "Customer", "id": "deleted-customer"}, False),  # a key is no action
])
def test_a_deletion_is_recognised_by_its_action_or_event_name(body, deleted):
    assert announces_deletion(json.dumps(body)) is deleted


def test_a_body_that_is_not_json_announces_no_deletion():
    assert not announces_deletion("Delete")


def test_a_notified_id_splits_into_the_key_values_every_way_a_slash_allows():
    assert notified_keys("10002", 1) == [("10002",)]
    assert notified_keys("Invoice/000123", 2) == [("Invoice", "000123")]
    assert notified_keys("Invoice/2025/7", 2) == [("Invoice", "2025/7"), ("Invoice/2025", "7")]
    assert notified_keys("Invoice", 2) == []
