"""Visma.net ERP: Visma Connect auth, the HTTP client, the entity catalogue, webhooks.

- `catalogue`: the entities this project reads (endpoint, key, paging, delta, period filter).
- `client`: `VismaClient.read_entity` reads an entity completely (paging, delta, concurrency).
- `auth`: client-credentials tokens per company, cached and renewed.
- `pacing`: keeps within Visma's rate limit per company and client.
- `retrying`: retries 429, 5xx and network errors, nothing else.
- `paging`: the stop rule, journal batch merging, dedupe within a read.
- `items`: answers decoded item by item, each keeping its own JSON text for the state store.
- `errors`: typed errors that say what failed and which setting to check.
- `timestamps`: Visma's timestamp formats and the watermark.
- `webhooks`: signature check and lenient parsing of Visma notifications.
- `stats`: counters for materialization metadata.
"""
