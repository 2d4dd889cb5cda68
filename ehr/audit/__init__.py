"""The audit trail: records, hash chain, checkpoints, verification."""
