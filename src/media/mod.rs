//! Media engine (sans-IO): audio codecs and packet loss concealment.

pub mod codec;
pub mod plc;
