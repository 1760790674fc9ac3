//! PulseAudio record and playback streams of 16-bit samples, with libpulse
//! loaded by `dlopen` the first time a stream is opened.
//!
//! Linking libpulse at build time maps it and the ~27 libraries it needs
//! into every process at start-up (2–3 MiB of resident memory for a phone
//! that plays to a file), and the binary then refuses to start on a machine
//! without libpulse0. Loaded on demand, only a process that opens a
//! PulseAudio stream pays for it, and a machine without the library gets an
//! error it can fall back from.
//!
//! All streams of a process share one connection and one threaded mainloop
//! (`pa_threaded_mainloop`): one thread that the server's messages wake,
//! which calls the [`Handler`] of each stream with recorded samples or for
//! samples to play, as a sound card's callback would. (libpulse's blocking
//! "simple" API, used before, runs a mainloop thread per stream and hands
//! every block across to the caller's thread: four threads waking 100 times
//! a second for a call's two streams instead of one.)
//!
//! The library is never closed again: libpulse starts threads of its own,
//! and a later stream would load it again anyway.
//!
//! Only what a 16-bit stream needs (`pulse/thread-mainloop.h`,
//! `pulse/context.h`, `pulse/stream.h`, `pulse/error.h`).

use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::fmt;
use std::ptr::NonNull;
use std::sync::{Arc, Mutex, OnceLock, Weak};

/// The library's soname (Debian package `libpulse0`).
pub const SONAME: &str = "libpulse.so.0";

/// `pa_sample_format_t`: signed 16-bit, native byte order.
const SAMPLE_S16NE: c_int = if cfg!(target_endian = "little") { 3 } else { 4 };
/// `pa_context_state_t`.
const CONTEXT_READY: c_int = 4;
const CONTEXT_FAILED: c_int = 5;
const CONTEXT_TERMINATED: c_int = 6;
/// `pa_stream_state_t`.
const STREAM_READY: c_int = 2;
const STREAM_FAILED: c_int = 3;
const STREAM_TERMINATED: c_int = 4;
/// `PA_STREAM_ADJUST_LATENCY`: the buffer attributes are the latency asked
/// for, and the device's own buffer is sized for it.
const STREAM_ADJUST_LATENCY: c_int = 0x2000;
/// `PA_SEEK_RELATIVE`.
const SEEK_RELATIVE: c_int = 0;
/// `PA_CONTEXT_NOAUTOSPAWN`: a phone does not start a sound server.
const CONTEXT_NOAUTOSPAWN: c_int = 1;

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

/// Opaque libpulse objects.
#[repr(C)]
struct Mainloop {
    _opaque: [u8; 0],
}
#[repr(C)]
struct MainloopApi {
    _opaque: [u8; 0],
}
#[repr(C)]
struct Context {
    _opaque: [u8; 0],
}
#[repr(C)]
struct PaStream {
    _opaque: [u8; 0],
}

type ContextNotify = unsafe extern "C" fn(c: *mut Context, userdata: *mut c_void);
type StreamNotify = unsafe extern "C" fn(s: *mut PaStream, userdata: *mut c_void);
type StreamRequest = unsafe extern "C" fn(s: *mut PaStream, nbytes: usize, userdata: *mut c_void);
type FreeCb = unsafe extern "C" fn(p: *mut c_void);

/// The entry points we use, bound once per process.
struct Api {
    ml_new: unsafe extern "C" fn() -> *mut Mainloop,
    ml_free: unsafe extern "C" fn(*mut Mainloop),
    ml_start: unsafe extern "C" fn(*mut Mainloop) -> c_int,
    ml_stop: unsafe extern "C" fn(*mut Mainloop),
    ml_lock: unsafe extern "C" fn(*mut Mainloop),
    ml_unlock: unsafe extern "C" fn(*mut Mainloop),
    ml_wait: unsafe extern "C" fn(*mut Mainloop),
    ml_signal: unsafe extern "C" fn(*mut Mainloop, c_int),
    ml_get_api: unsafe extern "C" fn(*mut Mainloop) -> *mut MainloopApi,
    /// Since libpulse 5; names the thread in `top` and profiles.
    ml_set_name: Option<unsafe extern "C" fn(*mut Mainloop, *const c_char)>,
    ctx_new: unsafe extern "C" fn(*mut MainloopApi, *const c_char) -> *mut Context,
    ctx_unref: unsafe extern "C" fn(*mut Context),
    ctx_set_state_callback: unsafe extern "C" fn(*mut Context, Option<ContextNotify>, *mut c_void),
    ctx_connect: unsafe extern "C" fn(*mut Context, *const c_char, c_int, *const c_void) -> c_int,
    ctx_disconnect: unsafe extern "C" fn(*mut Context),
    ctx_get_state: unsafe extern "C" fn(*const Context) -> c_int,
    ctx_errno: unsafe extern "C" fn(*const Context) -> c_int,
    st_new: unsafe extern "C" fn(
        *mut Context,
        *const c_char,
        *const SampleSpec,
        *const c_void,
    ) -> *mut PaStream,
    st_unref: unsafe extern "C" fn(*mut PaStream),
    st_get_state: unsafe extern "C" fn(*const PaStream) -> c_int,
    st_connect_playback: unsafe extern "C" fn(
        *mut PaStream,
        *const c_char,
        *const BufferAttr,
        c_int,
        *const c_void,
        *mut PaStream,
    ) -> c_int,
    st_connect_record:
        unsafe extern "C" fn(*mut PaStream, *const c_char, *const BufferAttr, c_int) -> c_int,
    st_disconnect: unsafe extern "C" fn(*mut PaStream) -> c_int,
    st_write: unsafe extern "C" fn(
        *mut PaStream,
        *const c_void,
        usize,
        Option<FreeCb>,
        i64,
        c_int,
    ) -> c_int,
    st_peek: unsafe extern "C" fn(*mut PaStream, *mut *const c_void, *mut usize) -> c_int,
    st_drop: unsafe extern "C" fn(*mut PaStream) -> c_int,
    st_set_state_callback: unsafe extern "C" fn(*mut PaStream, Option<StreamNotify>, *mut c_void),
    st_set_read_callback: unsafe extern "C" fn(*mut PaStream, Option<StreamRequest>, *mut c_void),
    st_set_write_callback: unsafe extern "C" fn(*mut PaStream, Option<StreamRequest>, *mut c_void),
    strerror: unsafe extern "C" fn(c_int) -> *const c_char,
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
    /// libpulse reported an error during `during` ("connect", "stream"):
    /// its text.
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
    // SAFETY: loading runs libpulse's initialisers, which only set up their
    // own state.
    let lib = unsafe { libloading::Library::new(SONAME) }.map_err(|e| e.to_string())?;
    // SAFETY: each field's type matches its C declaration in the headers
    // named at the top; the pointers stay valid because `lib` is stored next
    // to them and never unloaded.
    unsafe {
        macro_rules! sym {
            ($name:literal) => {
                *lib.get(concat!($name, "\0").as_bytes())
                    .map_err(|e| e.to_string())?
            };
        }
        Ok(Api {
            ml_new: sym!("pa_threaded_mainloop_new"),
            ml_free: sym!("pa_threaded_mainloop_free"),
            ml_start: sym!("pa_threaded_mainloop_start"),
            ml_stop: sym!("pa_threaded_mainloop_stop"),
            ml_lock: sym!("pa_threaded_mainloop_lock"),
            ml_unlock: sym!("pa_threaded_mainloop_unlock"),
            ml_wait: sym!("pa_threaded_mainloop_wait"),
            ml_signal: sym!("pa_threaded_mainloop_signal"),
            ml_get_api: sym!("pa_threaded_mainloop_get_api"),
            ml_set_name: lib.get(b"pa_threaded_mainloop_set_name\0").ok().map(|s| *s),
            ctx_new: sym!("pa_context_new"),
            ctx_unref: sym!("pa_context_unref"),
            ctx_set_state_callback: sym!("pa_context_set_state_callback"),
            ctx_connect: sym!("pa_context_connect"),
            ctx_disconnect: sym!("pa_context_disconnect"),
            ctx_get_state: sym!("pa_context_get_state"),
            ctx_errno: sym!("pa_context_errno"),
            st_new: sym!("pa_stream_new"),
            st_unref: sym!("pa_stream_unref"),
            st_get_state: sym!("pa_stream_get_state"),
            st_connect_playback: sym!("pa_stream_connect_playback"),
            st_connect_record: sym!("pa_stream_connect_record"),
            st_disconnect: sym!("pa_stream_disconnect"),
            st_write: sym!("pa_stream_write"),
            st_peek: sym!("pa_stream_peek"),
            st_drop: sym!("pa_stream_drop"),
            st_set_state_callback: sym!("pa_stream_set_state_callback"),
            st_set_read_callback: sym!("pa_stream_set_read_callback"),
            st_set_write_callback: sym!("pa_stream_set_write_callback"),
            strerror: sym!("pa_strerror"),
            _lib: lib,
        })
    }
}

impl Api {
    fn text(&self, code: c_int) -> String {
        // SAFETY: pa_strerror accepts any code and returns a pointer to a
        // static string, or NULL for an unknown one.
        unsafe {
            let p = (self.strerror)(code);
            if p.is_null() {
                format!("error {code}")
            } else {
                CStr::from_ptr(p).to_string_lossy().into_owned()
            }
        }
    }
}

// ------------------------------------------------------------- connection

/// One server connection and the mainloop thread that serves it, shared
/// by every stream to that server (each holds an `Arc`); closed when the
/// last one closes.
struct Connection {
    api: &'static Api,
    ml: NonNull<Mainloop>,
    ctx: NonNull<Context>,
    server: Option<String>,
}

// SAFETY: libpulse objects are used only with the mainloop lock held (or,
// for the mainloop itself, through its thread-safe functions), so the
// connection can be shared and dropped from any thread.
unsafe impl Send for Connection {}
unsafe impl Sync for Connection {}

/// Wakes whoever waits in `pa_threaded_mainloop_wait` (an opener).
unsafe extern "C" fn context_changed(_c: *mut Context, ml: *mut c_void) {
    if let Ok(api) = api() {
        // SAFETY: `ml` is the mainloop this context runs on (set with the
        // callback); called on its thread with its lock held.
        unsafe { (api.ml_signal)(ml.cast(), 0) };
    }
}

/// Locks the mainloop for the guard's lifetime.
struct Locked<'a>(&'a Connection);

impl Drop for Locked<'_> {
    fn drop(&mut self) {
        // SAFETY: locked by `Connection::lock`.
        unsafe { (self.0.api.ml_unlock)(self.0.ml.as_ptr()) }
    }
}

impl Connection {
    /// The live connection to `server`, or a new one.
    fn get(server: Option<&str>, app: &str) -> Result<Arc<Connection>, Error> {
        static SHARED: Mutex<Option<Weak<Connection>>> = Mutex::new(None);
        let mut slot = SHARED.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = slot.as_ref().and_then(Weak::upgrade)
            && c.server.as_deref() == server
            && c.ready()
        {
            return Ok(c);
        }
        let c = Arc::new(Connection::open(server, app)?);
        *slot = Some(Arc::downgrade(&c));
        Ok(c)
    }

    fn open(server: Option<&str>, app: &str) -> Result<Connection, Error> {
        let api = api()?;
        let c = |s: &str| CString::new(s).map_err(|_| Error::BadName(s.to_string()));
        let server_c = server.map(c).transpose()?;
        let app_c = c(app)?;
        // SAFETY: plain constructor; NULL on failure.
        let ml = NonNull::new(unsafe { (api.ml_new)() }).ok_or_else(|| Error::Pulse {
            during: "connect",
            text: "cannot create a mainloop".into(),
        })?;
        if let Some(set_name) = api.ml_set_name {
            // SAFETY: a live mainloop and a NUL-terminated name it copies.
            unsafe { set_name(ml.as_ptr(), c"pulse-mainloop".as_ptr()) };
        }
        // SAFETY: `ml` is live; the API pointer it returns lives as long.
        let ctx = unsafe { (api.ctx_new)((api.ml_get_api)(ml.as_ptr()), app_c.as_ptr()) };
        let Some(ctx) = NonNull::new(ctx) else {
            // SAFETY: not started, so no thread to stop.
            unsafe { (api.ml_free)(ml.as_ptr()) };
            return Err(Error::Pulse {
                during: "connect",
                text: "cannot create a context".into(),
            });
        };
        // From here on, dropping `conn` tears everything down.
        let conn = Connection {
            api,
            ml,
            ctx,
            server: server.map(str::to_string),
        };
        let server_p = server_c.as_ref().map_or(std::ptr::null(), |s| s.as_ptr());
        // SAFETY: the mainloop thread is not running yet, so no lock is
        // needed; the callback's user data is the mainloop, which outlives
        // the context.
        unsafe {
            (api.ctx_set_state_callback)(ctx.as_ptr(), Some(context_changed), ml.as_ptr().cast());
            if (api.ctx_connect)(
                ctx.as_ptr(),
                server_p,
                CONTEXT_NOAUTOSPAWN,
                std::ptr::null(),
            ) < 0
            {
                return Err(conn.error("connect"));
            }
            if (api.ml_start)(ml.as_ptr()) < 0 {
                return Err(Error::Pulse {
                    during: "connect",
                    text: "cannot start the mainloop thread".into(),
                });
            }
        }
        {
            let _lock = conn.lock();
            loop {
                // SAFETY: lock held; `ctx` is live.
                match unsafe { (api.ctx_get_state)(ctx.as_ptr()) } {
                    CONTEXT_READY => break,
                    CONTEXT_FAILED | CONTEXT_TERMINATED => return Err(conn.error("connect")),
                    // SAFETY: lock held; the state callback signals.
                    _ => unsafe { (api.ml_wait)(ml.as_ptr()) },
                }
            }
        }
        Ok(conn)
    }

    fn lock(&self) -> Locked<'_> {
        // SAFETY: never called on the mainloop thread (callbacks run there
        // with the lock already held and do not call this).
        unsafe { (self.api.ml_lock)(self.ml.as_ptr()) };
        Locked(self)
    }

    fn ready(&self) -> bool {
        let _lock = self.lock();
        // SAFETY: lock held; `ctx` is live.
        unsafe { (self.api.ctx_get_state)(self.ctx.as_ptr()) == CONTEXT_READY }
    }

    /// The context's last error. Lock held, or the mainloop not running.
    fn error(&self, during: &'static str) -> Error {
        // SAFETY: `ctx` is live.
        let code = unsafe { (self.api.ctx_errno)(self.ctx.as_ptr()) };
        Error::Pulse {
            during,
            text: self.api.text(code),
        }
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        let api = self.api;
        // SAFETY: no stream uses the context any more (each holds an Arc);
        // it is disconnected under the lock, then the thread is stopped
        // (not from itself: this never runs on it) before anything is freed.
        unsafe {
            (api.ml_lock)(self.ml.as_ptr());
            (api.ctx_set_state_callback)(self.ctx.as_ptr(), None, std::ptr::null_mut());
            (api.ctx_disconnect)(self.ctx.as_ptr());
            (api.ctx_unref)(self.ctx.as_ptr());
            (api.ml_unlock)(self.ml.as_ptr());
            (api.ml_stop)(self.ml.as_ptr());
            (api.ml_free)(self.ml.as_ptr());
        }
    }
}

// ---------------------------------------------------------------- streams

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
    /// Most samples (all channels) handed to the handler in one call;
    /// rounded down to whole frames.
    pub block: usize,
}

/// A stream's side of the mainloop: called on its thread, with its lock
/// held, so a handler must return quickly, never block, and never drop a
/// [`Stream`] (closing one takes the lock from another thread). A handler
/// that panics fails its stream.
pub trait Handler: Send + 'static {
    /// Record streams: samples as they arrive, at most `block` per call (a
    /// gap the server reports comes as silence).
    fn recorded(&mut self, _pcm: &[i16]) {}
    /// Playback streams: fill `out` (at most `block`) with what plays next.
    fn play(&mut self, out: &mut [i16]) {
        out.fill(0);
    }
    /// The stream failed or the server went away: no more calls follow.
    fn failed(&mut self, why: &str);
}

/// What the callbacks reach through their user data. Touched only with
/// the mainloop lock held.
struct Shared {
    api: &'static Api,
    ml: NonNull<Mainloop>,
    ctx: NonNull<Context>,
    handler: Box<dyn Handler>,
    /// `block` samples (whole frames), for conversion and play space.
    scratch: Vec<i16>,
    /// Samples per frame (interleaved channels).
    channels: usize,
    /// Set once the opener has seen the stream ready: failures after that
    /// go to the handler (before it, the opener reports them).
    opened: bool,
    failed: bool,
}

impl Shared {
    /// Runs a handler call on the first `k` samples of `scratch`; a panic
    /// fails the stream (it must not unwind into libpulse). False once the
    /// stream has failed.
    fn call(&mut self, f: impl FnOnce(&mut dyn Handler, &mut [i16]), k: usize) -> bool {
        if self.failed {
            return false;
        }
        let (handler, scratch) = (&mut self.handler, &mut self.scratch);
        let run = std::panic::AssertUnwindSafe(|| f(handler.as_mut(), &mut scratch[..k]));
        if std::panic::catch_unwind(run).is_err() {
            self.report("the stream's handler panicked");
            return false;
        }
        true
    }

    /// The stream has failed: tells the handler, once. Called from
    /// libpulse's callbacks, so a panic of the handler must not unwind.
    fn report(&mut self, why: &str) {
        self.failed = true;
        let handler = &mut self.handler;
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| handler.failed(why)));
    }

    fn fail(&mut self, during: &str) {
        if self.failed {
            return;
        }
        // SAFETY: lock held (callbacks only); `ctx` is live.
        let code = unsafe { (self.api.ctx_errno)(self.ctx.as_ptr()) };
        let why = format!("{during}: {}", self.api.text(code));
        self.report(&why);
    }
}

unsafe extern "C" fn stream_changed(s: *mut PaStream, ud: *mut c_void) {
    // SAFETY: `ud` is the stream's `Shared`, alive until its callbacks are
    // cleared under the lock, which this thread holds now.
    let sh = unsafe { &mut *ud.cast::<Shared>() };
    // SAFETY: `s` is the live stream this callback belongs to.
    let state = unsafe { (sh.api.st_get_state)(s) };
    if sh.opened && matches!(state, STREAM_FAILED | STREAM_TERMINATED) {
        sh.fail("stream");
    }
    // SAFETY: lock held; wakes an opener waiting for the state.
    unsafe { (sh.api.ml_signal)(sh.ml.as_ptr(), 0) };
}

unsafe extern "C" fn stream_readable(s: *mut PaStream, _nbytes: usize, ud: *mut c_void) {
    // SAFETY: as in `stream_changed`.
    let sh = unsafe { &mut *ud.cast::<Shared>() };
    if sh.failed {
        return;
    }
    loop {
        let mut data: *const c_void = std::ptr::null();
        let mut n = 0usize;
        // SAFETY: a live record stream; `data`/`n` receive the fragment,
        // valid until `pa_stream_drop`.
        if unsafe { (sh.api.st_peek)(s, &mut data, &mut n) } < 0 {
            sh.fail("read");
            return;
        }
        if n == 0 {
            return;
        }
        let block = sh.scratch.len();
        let frame = 2 * sh.channels;
        let mut ok = true;
        if data.is_null() {
            // A hole in the stream: n bytes of silence.
            sh.scratch.fill(0);
            let mut left = n / frame * sh.channels;
            while left > 0 && ok {
                let k = left.min(block);
                ok = sh.call(|h, pcm| h.recorded(pcm), k);
                left -= k;
            }
        } else {
            // SAFETY: libpulse gives `n` readable bytes at `data`.
            let bytes = unsafe { std::slice::from_raw_parts(data.cast::<u8>(), n) };
            // Copied sample by sample: the fragment need not be aligned.
            for chunk in bytes.chunks(block * 2) {
                let k = chunk.len() / frame * sh.channels;
                for (o, b) in sh.scratch.iter_mut().zip(chunk.chunks_exact(2)) {
                    *o = i16::from_ne_bytes([b[0], b[1]]);
                }
                if k > 0 && ok {
                    ok = sh.call(|h, pcm| h.recorded(pcm), k);
                }
            }
        }
        // SAFETY: drops the fragment just peeked.
        if unsafe { (sh.api.st_drop)(s) } < 0 {
            sh.fail("read");
            return;
        }
    }
}

unsafe extern "C" fn stream_writable(s: *mut PaStream, nbytes: usize, ud: *mut c_void) {
    // SAFETY: as in `stream_changed`.
    let sh = unsafe { &mut *ud.cast::<Shared>() };
    // Whole frames only: libpulse refuses a write of part of one.
    let mut left = nbytes / (2 * sh.channels) * sh.channels;
    while left > 0 {
        let k = left.min(sh.scratch.len());
        if !sh.call(|h, out| h.play(out), k) {
            return;
        }
        let out = &sh.scratch[..k];
        // SAFETY: a live playback stream; with no free callback libpulse
        // copies the `k` samples before returning.
        let r = unsafe { (sh.api.st_write)(s, out.as_ptr().cast(), k * 2, None, 0, SEEK_RELATIVE) };
        if r < 0 {
            sh.fail("write");
            return;
        }
        left -= k;
    }
}

/// One open stream; its handler is called on the mainloop thread until
/// the stream is dropped (which waits for a call under way to return).
pub struct Stream {
    conn: Arc<Connection>,
    raw: NonNull<PaStream>,
    shared: NonNull<Shared>,
}

// SAFETY: the stream is only touched with the mainloop lock held.
unsafe impl Send for Stream {}

impl Stream {
    /// Connects (or shares the connection to the server) and opens the
    /// stream; returns once the server has it running, or with its error.
    pub fn open(
        dir: Direction,
        spec: &StreamSpec<'_>,
        handler: Box<dyn Handler>,
    ) -> Result<Stream, Error> {
        let c = |s: &str| CString::new(s).map_err(|_| Error::BadName(s.to_string()));
        let device = spec.device.map(c).transpose()?;
        let name = c(spec.stream)?;
        let conn = Connection::get(spec.server, spec.app)?;
        let api = conn.api;
        let ss = SampleSpec {
            format: SAMPLE_S16NE,
            rate: spec.rate,
            channels: spec.channels,
        };
        // Blocks of whole frames.
        let channels = usize::from(spec.channels.max(1));
        let block = (spec.block / channels).max(1) * channels;
        let state = Box::new(Shared {
            api,
            ml: conn.ml,
            ctx: conn.ctx,
            handler,
            scratch: vec![0; block],
            channels,
            opened: false,
            failed: false,
        });
        let lock = conn.lock();
        // SAFETY: lock held; a NULL channel map means the default one for
        // `channels`.
        let raw = unsafe { (api.st_new)(conn.ctx.as_ptr(), name.as_ptr(), &ss, std::ptr::null()) };
        let Some(raw) = NonNull::new(raw) else {
            return Err(conn.error("stream"));
        };
        let shared = NonNull::from(Box::leak(state));
        drop(lock);
        // From here on, dropping `stream` clears the callbacks, closes the
        // stream and frees `shared`.
        let stream = Stream { conn, raw, shared };
        let dev = device.as_ref().map_or(std::ptr::null(), |d| d.as_ptr());
        let _lock = stream.conn.lock();
        let ud = shared.as_ptr().cast::<c_void>();
        // SAFETY: lock held; `ud` stays valid until Drop clears the
        // callbacks under the lock; `spec.attr` is read during the call.
        let r = unsafe {
            (api.st_set_state_callback)(raw.as_ptr(), Some(stream_changed), ud);
            match dir {
                Direction::Record => {
                    (api.st_set_read_callback)(raw.as_ptr(), Some(stream_readable), ud);
                    (api.st_connect_record)(raw.as_ptr(), dev, &spec.attr, STREAM_ADJUST_LATENCY)
                }
                Direction::Playback => {
                    (api.st_set_write_callback)(raw.as_ptr(), Some(stream_writable), ud);
                    (api.st_connect_playback)(
                        raw.as_ptr(),
                        dev,
                        &spec.attr,
                        STREAM_ADJUST_LATENCY,
                        std::ptr::null(),
                        std::ptr::null_mut(),
                    )
                }
            }
        };
        if r < 0 {
            return Err(stream.conn.error("stream"));
        }
        loop {
            // SAFETY: lock held; the stream is live.
            match unsafe { (api.st_get_state)(raw.as_ptr()) } {
                STREAM_READY => break,
                STREAM_FAILED | STREAM_TERMINATED => return Err(stream.conn.error("stream")),
                // SAFETY: lock held; the state callback signals.
                _ => unsafe { (api.ml_wait)(stream.conn.ml.as_ptr()) },
            }
        }
        // SAFETY: lock held, so no callback is using `shared` now.
        unsafe { (*shared.as_ptr()).opened = true };
        drop(_lock);
        Ok(stream)
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        let api = self.conn.api;
        {
            let _lock = self.conn.lock();
            let s = self.raw.as_ptr();
            // SAFETY: lock held, so no callback runs; after these no
            // callback of this stream will, and the stream is released
            // exactly once.
            unsafe {
                (api.st_set_state_callback)(s, None, std::ptr::null_mut());
                (api.st_set_read_callback)(s, None, std::ptr::null_mut());
                (api.st_set_write_callback)(s, None, std::ptr::null_mut());
                (api.st_disconnect)(s);
                (api.st_unref)(s);
            }
        }
        // SAFETY: leaked in `open` and no longer reachable from libpulse.
        drop(unsafe { Box::from_raw(self.shared.as_ptr()) });
    }
}

/// True when the library can be loaded on this machine (loads it).
pub fn available() -> bool {
    api().is_ok()
}

#[doc(hidden)]
pub mod private_server;

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(server: Option<&str>) -> StreamSpec<'_> {
        StreamSpec {
            server,
            app: "pulse-dl test",
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
            block: 80,
        }
    }

    struct Quiet;
    impl Handler for Quiet {
        fn failed(&mut self, _why: &str) {}
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
        match Stream::open(Direction::Record, &s, Box::new(Quiet)) {
            Err(Error::BadName(n)) => assert_eq!(n, "mic\0rophone"),
            other => panic!("expected a bad name, got {:?}", other.err()),
        }
    }

    /// Needs libpulse0 (the test set-up installs it), no server: a server
    /// that is not there gives libpulse's own error text through
    /// `pa_strerror`, which shows the entry points were bound.
    #[test]
    fn a_missing_server_is_libpulses_connection_error() {
        let dir = std::env::temp_dir().join(format!("pulse-dl-{}", std::process::id()));
        let server = format!("unix:{}/nowhere", dir.display());
        let err = Stream::open(Direction::Playback, &spec(Some(&server)), Box::new(Quiet))
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
