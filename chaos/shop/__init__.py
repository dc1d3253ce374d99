"""The chaos harness's shop: orders, the order workflow, and the harness's own receipts."""
