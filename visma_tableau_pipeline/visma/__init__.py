"""Visma.net ERP: Visma Connect auth, the HTTP client, the entity catalogue, webhooks."""
