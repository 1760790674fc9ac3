//! The tokio side of Softline: sockets, DNS, TLS and the clock. Only this
//! layer may read the clock or sleep.
#![allow(clippy::disallowed_methods)]

pub mod conference;
pub mod config_guard;
pub mod driver;
pub mod history;
pub mod media;
pub mod media_watch;
pub mod net;
pub mod provisioning;
pub mod quality_watch;
pub mod ringer;
pub mod trace;

/// The one base `Instant` the unit tests of the sans-IO core start their
/// fake clocks from (they add durations to it); the core itself never
/// reads the clock.
#[cfg(test)]
pub(crate) fn test_epoch() -> std::time::Instant {
    std::time::Instant::now()
}
