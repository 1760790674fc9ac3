//! Media: codecs, jitter buffer, loss concealment, the per-call media
//! session, and signal tools (tones).

pub mod resample;
pub mod tone;
