//! Media engine: sans-IO building blocks for RTP audio.

pub mod jitter;
