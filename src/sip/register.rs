//! Registration (RFC 3261 §10). STUB.
