//! PulseAudio's blocking "simple" API (libpulse-simple), loaded with
//! `dlopen` the first time a stream is opened.
//!
//! Linking libpulse at build time maps it and the ~27 libraries it needs
//! into every process at start-up (2–3 MiB of resident memory for a
//! phone that plays to a file), and the binary then refuses to start on a
//! machine without libpulse0. Loaded on demand, only a process that opens a
//! PulseAudio stream pays for it, and a machine without the library gets an
//! error it can fall back from.
//!
//! The library is never closed again: libpulse starts threads of its own,
//! and a later stream would load it again anyway.
//!
//! Only what a 16-bit stream needs: open, read, write, free and the error
//! text (`pulse/simple.h`, `pulse/error.h`).

use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::fmt;
use std::ptr::NonNull;
use std::sync::OnceLock;

/// The library's soname (Debian package `libpulse0`).
pub const SONAME: &str = "libpulse-simple.so.0";

/// `pa_sample_format_t`: signed 16-bit, native byte order.
const SAMPLE_S16NE: c_int = if cfg!(target_endian = "little") { 3 } else { 4 };
/// `pa_stream_direction_t`.
const STREAM_PLAYBACK: c_int = 1;
const STREAM_RECORD: c_int = 2;

/// `pa_sample_spec`.
#[repr(C)]
struct SampleSpec {
    format: c_int,
    rate: u32,
    channels: u8,
}

/// `pa_buffer_attr`: the server-side buffering of a stream, in bytes.
/// `u32::MAX` in a field means "the server's default".
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BufferAttr {
    /// Most bytes the server buffers.
    pub maxlength: u32,
    /// Playback: bytes the server keeps queued.
    pub tlength: u32,
    /// Playback: bytes needed before playback starts (0: start at once).
    pub prebuf: u32,
    /// Playback: smallest refill the server asks for.
    pub minreq: u32,
    /// Record: bytes per delivered fragment.
    pub fragsize: u32,
}

/// The opaque `pa_simple`.
#[repr(C)]
struct PaSimple {
    _opaque: [u8; 0],
}

type NewFn = unsafe extern "C" fn(
    server: *const c_char,
    name: *const c_char,
    dir: c_int,
    dev: *const c_char,
    stream_name: *const c_char,
    ss: *const SampleSpec,
    map: *const c_void,
    attr: *const BufferAttr,
    error: *mut c_int,
) -> *mut PaSimple;
type FreeFn = unsafe extern "C" fn(s: *mut PaSimple);
type WriteFn = unsafe extern "C" fn(
    s: *mut PaSimple,
    data: *const c_void,
    bytes: usize,
    error: *mut c_int,
) -> c_int;
type ReadFn = unsafe extern "C" fn(
    s: *mut PaSimple,
    data: *mut c_void,
    bytes: usize,
    error: *mut c_int,
) -> c_int;
type StrerrorFn = unsafe extern "C" fn(error: c_int) -> *const c_char;

/// The loaded library and the entry points we use.
struct Api {
    new: NewFn,
    free: FreeFn,
    write: WriteFn,
    read: ReadFn,
    strerror: StrerrorFn,
    /// Keeps the entry points valid; never dropped (it lives in a static).
    _lib: libloading::Library,
}

/// Why a stream could not be opened or used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The library or one of its entry points could not be loaded.
    Unavailable(String),
    /// A name passed in contains a NUL byte.
    BadName(String),
    /// libpulse reported an error during `during` ("connect", "read",
    /// "write"): its text.
    Pulse {
        /// What was being done.
        during: &'static str,
        /// `pa_strerror` of the code.
        text: String,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Unavailable(why) => write!(f, "{SONAME} not available: {why}"),
            Error::BadName(name) => write!(f, "name {name:?} contains a NUL byte"),
            Error::Pulse { during, text } => write!(f, "PulseAudio {during}: {text}"),
        }
    }
}

impl std::error::Error for Error {}

/// Loads the library once per process; later calls return the same result.
fn api() -> Result<&'static Api, Error> {
    static API: OnceLock<Result<Api, String>> = OnceLock::new();
    API.get_or_init(load)
        .as_ref()
        .map_err(|e| Error::Unavailable(e.clone()))
}

fn load() -> Result<Api, String> {
    // SAFETY: loading runs libpulse-simple's (and libpulse's) initialisers,
    // which only set up their own state.
    let lib = unsafe { libloading::Library::new(SONAME) }.map_err(|e| e.to_string())?;
    // SAFETY: each type above matches its C declaration in pulse/simple.h
    // and pulse/error.h; the pointers stay valid because `lib` is stored
    // next to them and never unloaded. `pa_strerror` lives in libpulse,
    // which dlsym finds among libpulse-simple's dependencies.
    unsafe {
        Ok(Api {
            new: *lib
                .get::<NewFn>(b"pa_simple_new\0")
                .map_err(|e| e.to_string())?,
            free: *lib
                .get::<FreeFn>(b"pa_simple_free\0")
                .map_err(|e| e.to_string())?,
            write: *lib
                .get::<WriteFn>(b"pa_simple_write\0")
                .map_err(|e| e.to_string())?,
            read: *lib
                .get::<ReadFn>(b"pa_simple_read\0")
                .map_err(|e| e.to_string())?,
            strerror: *lib
                .get::<StrerrorFn>(b"pa_strerror\0")
                .map_err(|e| e.to_string())?,
            _lib: lib,
        })
    }
}

impl Api {
    /// A simple-API call's result: negative is an error whose code is in
    /// `code`.
    fn check(&self, during: &'static str, r: c_int, code: c_int) -> Result<(), Error> {
        if r < 0 {
            Err(self.error(during, code))
        } else {
            Ok(())
        }
    }

    fn error(&self, during: &'static str, code: c_int) -> Error {
        // SAFETY: pa_strerror accepts any code and returns a pointer to a
        // static string, or NULL for an unknown one.
        let text = unsafe {
            let p = (self.strerror)(code);
            if p.is_null() {
                format!("error {code}")
            } else {
                CStr::from_ptr(p).to_string_lossy().into_owned()
            }
        };
        Error::Pulse { during, text }
    }
}

/// Which way the samples go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// To a sink (speakers).
    Playback,
    /// From a source (microphone).
    Record,
}

/// What to open.
#[derive(Debug, Clone)]
pub struct StreamSpec<'a> {
    /// Server address; `None`: `PULSE_SERVER` or the user's default.
    pub server: Option<&'a str>,
    /// The application name the server shows.
    pub app: &'a str,
    /// The stream's name (e.g. "microphone").
    pub stream: &'a str,
    /// Sink or source name; `None`: `PULSE_SINK` / `PULSE_SOURCE` or the
    /// default.
    pub device: Option<&'a str>,
    /// Samples per second.
    pub rate: u32,
    /// Interleaved channels.
    pub channels: u8,
    /// Server-side buffering.
    pub attr: BufferAttr,
}

/// One open stream of 16-bit samples. Reads and writes block; the server
/// paces them. Not `Send`: it is used by the thread that opened it.
pub struct Stream {
    api: &'static Api,
    raw: NonNull<PaSimple>,
}

impl Stream {
    /// Connects to the server and opens the stream.
    pub fn open(dir: Direction, spec: &StreamSpec<'_>) -> Result<Stream, Error> {
        let api = api()?;
        let c = |s: &str| CString::new(s).map_err(|_| Error::BadName(s.to_string()));
        let server = spec.server.map(c).transpose()?;
        let device = spec.device.map(c).transpose()?;
        let (app, stream) = (c(spec.app)?, c(spec.stream)?);
        let ss = SampleSpec {
            format: SAMPLE_S16NE,
            rate: spec.rate,
            channels: spec.channels,
        };
        let dir = match dir {
            Direction::Playback => STREAM_PLAYBACK,
            Direction::Record => STREAM_RECORD,
        };
        let opt = |s: &Option<CString>| s.as_ref().map_or(std::ptr::null(), |s| s.as_ptr());
        let mut code: c_int = 0;
        // SAFETY: every pointer is NULL or points to a live value of the
        // declared type for the duration of the call; a NULL channel map
        // means the default map for `channels`.
        let raw = unsafe {
            (api.new)(
                opt(&server),
                app.as_ptr(),
                dir,
                opt(&device),
                stream.as_ptr(),
                &ss,
                std::ptr::null(),
                &spec.attr,
                &mut code,
            )
        };
        match NonNull::new(raw) {
            Some(raw) => Ok(Stream { api, raw }),
            None => Err(api.error("connect", code)),
        }
    }

    /// Blocks until `out` is filled with recorded samples.
    pub fn read(&self, out: &mut [i16]) -> Result<(), Error> {
        let mut code: c_int = 0;
        // SAFETY: `raw` is a live stream owned by self; `out` is writable
        // for exactly the byte count given.
        let r = unsafe {
            (self.api.read)(
                self.raw.as_ptr(),
                out.as_mut_ptr().cast(),
                std::mem::size_of_val(out),
                &mut code,
            )
        };
        self.api.check("read", r, code)
    }

    /// Blocks until the server has taken `pcm`.
    pub fn write(&self, pcm: &[i16]) -> Result<(), Error> {
        let mut code: c_int = 0;
        // SAFETY: as in `read`; the data is only read.
        let r = unsafe {
            (self.api.write)(
                self.raw.as_ptr(),
                pcm.as_ptr().cast(),
                std::mem::size_of_val(pcm),
                &mut code,
            )
        };
        self.api.check("write", r, code)
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        // SAFETY: `raw` came from pa_simple_new and is freed exactly once.
        unsafe { (self.api.free)(self.raw.as_ptr()) }
    }
}

/// True when the library can be loaded on this machine (loads it).
pub fn available() -> bool {
    api().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(server: Option<&str>) -> StreamSpec<'_> {
        StreamSpec {
            server,
            app: "pulse-simple-dl test",
            stream: "test",
            device: None,
            rate: 8000,
            channels: 1,
            attr: BufferAttr {
                maxlength: u32::MAX,
                tlength: u32::MAX,
                prebuf: u32::MAX,
                minreq: u32::MAX,
                fragsize: u32::MAX,
            },
        }
    }

    #[test]
    fn the_c_structs_have_the_c_layout() {
        // pa_sample_spec: int, uint32_t, uint8_t -> 12 bytes with padding.
        assert_eq!(std::mem::size_of::<SampleSpec>(), 12);
        assert_eq!(std::mem::offset_of!(SampleSpec, channels), 8);
        // pa_buffer_attr: five uint32_t.
        assert_eq!(std::mem::size_of::<BufferAttr>(), 20);
        assert_eq!(std::mem::offset_of!(BufferAttr, fragsize), 16);
    }

    #[test]
    fn a_name_with_a_nul_is_an_error() {
        let mut s = spec(None);
        s.stream = "mic\0rophone";
        match Stream::open(Direction::Record, &s) {
            // Without the library the load error comes first; both are errors.
            Err(Error::BadName(n)) => assert_eq!(n, "mic\0rophone"),
            Err(Error::Unavailable(_)) => assert!(!available()),
            other => panic!("expected an error, got {:?}", other.err()),
        }
    }

    /// Needs libpulse0 (the test set-up installs it), no server: a server
    /// that is not there gives libpulse's own error text through
    /// `pa_strerror`, which shows the entry points were bound.
    #[test]
    fn a_missing_server_is_libpulses_connection_error() {
        let dir = std::env::temp_dir().join(format!("pulse-dl-{}", std::process::id()));
        let server = format!("unix:{}/nowhere", dir.display());
        let err = Stream::open(Direction::Playback, &spec(Some(&server)))
            .err()
            .expect("no server there");
        match &err {
            Error::Pulse { during, text } => {
                assert_eq!(*during, "connect");
                assert!(text.contains("Connection refused"), "{text}");
            }
            other => panic!("expected a PulseAudio error, got {other}"),
        }
    }
}
