//! Softline: a native desktop SIP softphone.
//!
//! Layers (see ARCHITECTURE.md): `sip` (sans-IO protocol core) → `phone`
//! (accounts, calls, policy; sans-IO) → `runtime` (tokio: sockets, DNS, TLS,
//! clock) → `api` (control channel) / `main` (CLI, headless).

pub mod api;
pub mod audio;
pub mod config;
pub mod doctor;
pub mod gui;
pub mod media;
pub mod phone;
pub mod rtp;
pub mod runtime;
pub mod sdp;
pub mod sip;
