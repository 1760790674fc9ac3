//! Media: codecs, jitter buffer, loss concealment, the per-call media
//! session, resampling and signal tools (tones). Sans-IO throughout.

pub mod aec;
pub mod codec;
pub mod comfort_noise;
pub mod jitter;
pub mod level;
pub mod limiter;
pub mod mixer;
pub mod plc;
pub mod quality;
pub mod resample;
pub mod session;
pub mod tone;
