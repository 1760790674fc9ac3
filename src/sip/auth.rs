//! Digest authentication (RFC 7616/8760). STUB.
