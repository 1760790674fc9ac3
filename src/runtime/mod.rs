//! The tokio side of Softline: sockets, DNS, TLS and the clock. Only this
//! layer may read the clock or sleep.
#![allow(clippy::disallowed_methods)]

pub mod driver;
pub mod media;
pub mod net;
pub mod trace;
