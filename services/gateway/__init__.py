"""gateway: the HTTP API (FastAPI). Ingests touchpoints into touchpoints.raw and serves reads of every
service through that service's own query functions; it writes only `ingest_receipts` itself."""
