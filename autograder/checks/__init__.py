"""Each chapter's trusted checks, keyed by the test cell's grade_id (contract: autograder/PROTOCOL.md)."""
