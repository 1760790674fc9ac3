//! The default microphone and speakers through a PulseAudio server (or
//! PipeWire's Pulse server) on Linux, with libpulse's blocking simple API.
//!
//! Why not cpal's ALSA `default` device, which on such a desktop is the
//! `pulse` plugin: its capture thread spins (the plugin says "readable"
//! before a whole period has arrived) and its playout is called back at
//! about half the device rate, so a call cost 11–14 % of a core and lost
//! frames (docs/benchmarks.md, "A sound device through PulseAudio").
//!
//! A [`PulseStream`] is one mono 16-bit stream at a rate we choose; its
//! owner thread reads or writes 10 ms blocks, and the server paces it.
//! The ring bridges of `device` sit between that thread and the media task
//! exactly as they sit behind a cpal callback.

use pulse_simple_dl::{BufferAttr, Direction, Stream, StreamSpec};

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

/// One open record or playback stream. libpulse is loaded on the first
/// one (`pulse_simple_dl`), so a phone that never opens a default device
/// does not map it, and a machine without it falls back to ALSA.
pub struct PulseStream {
    stream: Stream,
}

impl PulseStream {
    /// The default source (`PULSE_SOURCE` when set), 10 ms fragments.
    pub fn record() -> Result<PulseStream, String> {
        PulseStream::open(Direction::Record)
    }

    /// The default sink (`PULSE_SINK` when set), about 40 ms of buffer.
    pub fn playback() -> Result<PulseStream, String> {
        PulseStream::open(Direction::Playback)
    }

    fn open(dir: Direction) -> Result<PulseStream, String> {
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
        };
        let what = match dir {
            Direction::Record => "record",
            Direction::Playback => "playback",
        };
        let stream = Stream::open(dir, &spec).map_err(|e| format!("{what} stream: {e}"))?;
        Ok(PulseStream { stream })
    }

    /// Blocks until `out` is filled with recorded samples.
    pub fn read(&self, out: &mut [i16]) -> Result<(), String> {
        self.stream.read(out).map_err(|e| e.to_string())
    }

    /// Blocks until the server has taken `pcm`.
    pub fn write(&self, pcm: &[i16]) -> Result<(), String> {
        self.stream.write(pcm).map_err(|e| e.to_string())
    }
}
