//! Transactions (RFC 3261 §17). STUB.
