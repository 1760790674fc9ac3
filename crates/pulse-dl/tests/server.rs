//! Against a real server: a private `pulseaudio` (Debian package
//! `pulseaudio`, which the test set-up installs) with one null sink. A
//! playback stream plays a ramp into it and a record stream on its monitor
//! hears it; both share one connection; a handler that panics fails its
//! stream instead of unwinding into libpulse.
#![allow(clippy::disallowed_methods)] // a test of real I/O waits on the clock

use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use pulse_dl::{BufferAttr, Direction, Handler, Stream, StreamSpec, private_server};

struct Server {
    child: Child,
    dir: std::path::PathBuf,
    address: String,
}

impl Server {
    fn start() -> Server {
        let dir = std::env::temp_dir().join(format!("pulse-dl-server-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("state")).unwrap();
        let socket = private_server::socket(&dir);
        let child = private_server::command(&dir, &["sink_name=out rate=8000 channels=1"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("pulseaudio must be installed");
        let t0 = Instant::now();
        while !socket.exists() && t0.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(50));
        }
        // The socket appears before the modules are all loaded.
        std::thread::sleep(Duration::from_millis(300));
        Server {
            child,
            address: private_server::address(&dir),
            dir,
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn spec<'a>(server: &'a str, device: &'a str) -> StreamSpec<'a> {
    StreamSpec {
        server: Some(server),
        app: "pulse-dl test",
        stream: "test",
        device: Some(device),
        rate: 8000,
        channels: 1,
        attr: BufferAttr {
            maxlength: u32::MAX,
            tlength: 4 * 160,
            prebuf: 0,
            minreq: 160,
            fragsize: 160,
        },
        block: 80,
    }
}

/// Plays a ramp 0, 1, 2, … (mod 1000); panics on call `panic_at`.
struct Ramp {
    next: i16,
    calls: u32,
    panic_at: Option<u32>,
    failed: mpsc::Sender<String>,
}

impl Handler for Ramp {
    fn play(&mut self, out: &mut [i16]) {
        self.calls += 1;
        if Some(self.calls) == self.panic_at {
            panic!("handler test panic");
        }
        for s in out {
            *s = self.next;
            self.next = (self.next + 1) % 1000;
        }
    }

    fn failed(&mut self, why: &str) {
        let _ = self.failed.send(why.to_string());
    }
}

/// Sends what it records.
struct Tap(mpsc::Sender<Vec<i16>>);

impl Handler for Tap {
    fn recorded(&mut self, pcm: &[i16]) {
        assert!(pcm.len() <= 80, "blocks of at most `block` samples");
        let _ = self.0.send(pcm.to_vec());
    }

    fn failed(&mut self, _why: &str) {}
}

#[test]
fn a_ramp_played_to_a_null_sink_is_heard_on_its_monitor_and_a_panic_fails_the_stream() {
    let server = Server::start();
    let (fail_tx, fail_rx) = mpsc::channel();
    let (rec_tx, rec_rx) = mpsc::channel();
    let record = Stream::open(
        Direction::Record,
        &spec(&server.address, "out.monitor"),
        Box::new(Tap(rec_tx)),
    )
    .expect("record stream");
    let play = Stream::open(
        Direction::Playback,
        &spec(&server.address, "out"),
        Box::new(Ramp {
            next: 0,
            calls: 0,
            panic_at: None,
            failed: fail_tx.clone(),
        }),
    )
    .expect("playback stream");
    // The ramp comes back: a run of 200 consecutive steps of +1 somewhere
    // in what the monitor delivers (the null sink starts after a while).
    let t0 = Instant::now();
    let (mut run, mut best, mut prev) = (0usize, 0usize, None::<i16>);
    while best < 200 && t0.elapsed() < Duration::from_secs(10) {
        let Ok(block) = rec_rx.recv_timeout(Duration::from_millis(500)) else {
            continue;
        };
        for s in block {
            run = match prev {
                Some(p) if s == (p + 1) % 1000 && s != 0 => run + 1,
                _ => 0,
            };
            best = best.max(run);
            prev = Some(s);
        }
    }
    assert!(best >= 200, "longest ramp run heard: {best}");
    assert!(fail_rx.try_recv().is_err(), "nothing failed");
    drop(play);

    // A handler that panics on its third call: the stream fails, the
    // process lives on, and the record stream on the same connection goes
    // on delivering.
    let _panicky = Stream::open(
        Direction::Playback,
        &spec(&server.address, "out"),
        Box::new(Ramp {
            next: 0,
            calls: 0,
            panic_at: Some(3),
            failed: fail_tx,
        }),
    )
    .expect("second playback stream");
    let why = fail_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the panic is reported as a failure");
    assert!(why.contains("panicked"), "{why}");
    while rec_rx.try_recv().is_ok() {}
    assert!(
        rec_rx.recv_timeout(Duration::from_secs(2)).is_ok(),
        "the record stream still delivers"
    );
    drop(record);
}
