//! The default microphone and speakers through a PulseAudio server (or
//! PipeWire's Pulse server) on Linux, with libpulse's asynchronous API.
//!
//! Why not cpal's ALSA `default` device, which on such a desktop is the
//! `pulse` plugin: its capture thread spins (the plugin says "readable"
//! before a whole period has arrived) and its playout is called back at
//! about half the device rate, so a call cost 11–14 % of a core and lost
//! frames (docs/benchmarks.md, "A sound device through PulseAudio").
//!
//! A [`PulseStream`] is one mono 16-bit stream at a rate we choose. Both of
//! a call's streams share one connection and one mainloop thread
//! (`pulse_dl`), which calls their handlers with 10 ms blocks as the server
//! delivers or asks for them; the ring bridges of `device` sit behind those
//! handlers exactly as they sit behind a cpal callback.

use pulse_dl::{BufferAttr, Direction, Handler, Stream, StreamSpec};

/// The rate the phone asks the server for (it resamples as needed).
pub const RATE: u32 = 48_000;
/// Samples per block: 10 ms.
pub const BLOCK: usize = (RATE / 100) as usize;
/// Blocks the server keeps queued for playback (its target length).
pub const PLAYBACK_BLOCKS: u32 = 4;

/// True when a PulseAudio server is configured or its socket exists: then
/// the default devices go through it.
pub fn server_present() -> bool {
    if std::env::var_os("PULSE_SERVER").is_some() {
        return true;
    }
    std::env::var_os("XDG_RUNTIME_DIR")
        .map(|d| {
            std::path::Path::new(&d)
                .join("pulse")
                .join("native")
                .exists()
        })
        .unwrap_or(false)
}

/// One open record or playback stream; closed when dropped. libpulse is
/// loaded on the first one (`pulse_dl`), so a phone that never opens a
/// default device does not map it, and a machine without it falls back to
/// ALSA.
pub struct PulseStream {
    _stream: Stream,
}

impl PulseStream {
    /// The default source (`PULSE_SOURCE` when set), 10 ms fragments,
    /// handed to `handler` as they arrive.
    pub fn record(handler: Box<dyn Handler>) -> Result<PulseStream, String> {
        PulseStream::open(Direction::Record, handler)
    }

    /// The default sink (`PULSE_SINK` when set), about 40 ms of buffer,
    /// refilled from `handler` a block at a time.
    pub fn playback(handler: Box<dyn Handler>) -> Result<PulseStream, String> {
        PulseStream::open(Direction::Playback, handler)
    }

    fn open(dir: Direction, handler: Box<dyn Handler>) -> Result<PulseStream, String> {
        let block = (BLOCK * 2) as u32;
        let spec = StreamSpec {
            server: None,
            app: "Softline",
            stream: match dir {
                Direction::Record => "microphone",
                Direction::Playback => "call audio",
            },
            device: None,
            rate: RATE,
            channels: 1,
            attr: BufferAttr {
                maxlength: u32::MAX,
                // Playback: PLAYBACK_BLOCKS queued at the server, refilled
                // a block at a time.
                tlength: PLAYBACK_BLOCKS * block,
                prebuf: 0,
                minreq: block,
                // Record: delivered a block at a time.
                fragsize: block,
            },
            block: BLOCK,
        };
        let what = match dir {
            Direction::Record => "record",
            Direction::Playback => "playback",
        };
        let stream =
            Stream::open(dir, &spec, handler).map_err(|e| format!("{what} stream: {e}"))?;
        Ok(PulseStream { _stream: stream })
    }
}
