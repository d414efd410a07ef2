"""`her2-cds export`: a FHIR Bulk Data Access 2.0 client (kick-off, poll, download, resume,
delete) with SMART Backend Services authorization, writing NDJSON that `population` reads."""
