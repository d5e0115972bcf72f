"""Pure rules of the audit log: canonical encodings, the hash chain and its verification."""
