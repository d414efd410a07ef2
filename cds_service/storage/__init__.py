"""Storage: the database, card rules, deferred (after-response) writes."""
