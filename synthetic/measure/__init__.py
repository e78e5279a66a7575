"""What checks measure with: the HTTP client of the BFF (bounded, retried,
hardened), health bodies, BullMQ job counts in Redis, JSON bodies, Prometheus
text and series selectors, and reading values out of documents. Check authors
import these from `synthetic`; the modules are the framework's own."""
