//! The sans-IO SIP stack, layered as RFC 3261 describes it:
//! message (model, parser, serializer) → transport framing → transaction →
//! dialog / registration → endpoint. No sockets, no clock reads, no threads.

pub mod auth;
pub mod dialog;
pub mod framing;
pub mod headers;
pub mod message;
pub mod parse;
pub mod redact;
pub mod register;
pub mod rng;
pub mod serialize;
pub mod transport;
pub mod txn;
pub mod uri;
