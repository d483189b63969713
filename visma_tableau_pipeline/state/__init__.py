"""The project's own database: records, watermarks, webhook inbox, audit ledger, secrets."""
