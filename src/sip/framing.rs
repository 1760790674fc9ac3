//! Stream framing (RFC 3261 §18.3). STUB.
