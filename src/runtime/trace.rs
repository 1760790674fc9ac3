//! The SIP trace: every message sent and received, with time, direction,
//! transport and peer, secrets redacted, in a size-rotated file under the
//! XDG state dir. Support staff live on it; it can be switched at run time.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::time::SystemTime;

use crate::config::TraceConfig;
use crate::sip::redact::redact_sip;
use crate::sip::transport::Peer;

/// Records waiting for the writer thread; beyond this they are dropped
/// (and counted) rather than slowing the network thread.
const QUEUE: usize = 4096;

/// The trace as the network thread sees it: a flag and a queue. A writer
/// thread owns the file, so a slow disk never delays SIP timers.
pub struct Trace {
    dir: PathBuf,
    enabled: bool,
    max_bytes: u64,
    keep: u32,
    tx: Option<SyncSender<Record>>,
    writer: Option<std::thread::JoinHandle<()>>,
    dropped: u64,
}

/// Direction of a traced message.
#[derive(Debug, Clone, Copy)]
pub enum Dir {
    Sent,
    Received,
}

struct Record {
    when: SystemTime,
    dir: Dir,
    peer: Peer,
    data: Vec<u8>,
}

impl Trace {
    /// A trace per `config`; when it is enabled but cannot be written, the
    /// reason is logged and the trace stays off.
    pub fn new(config: &TraceConfig) -> Trace {
        let dir = config.dir.clone().unwrap_or_else(default_dir);
        let mut t = Trace {
            dir,
            enabled: false,
            max_bytes: config.max_file_kb.max(1) * 1024,
            keep: config.keep_files.max(1),
            tx: None,
            writer: None,
            dropped: 0,
        };
        if config.enabled
            && let Err(e) = t.set_enabled(true)
        {
            tracing::warn!("SIP trace off: cannot write {}: {e}", t.path().display());
        }
        t
    }

    pub fn path(&self) -> PathBuf {
        self.dir.join("sip-trace.log")
    }

    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// Records dropped because the writer could not keep up.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Switch the trace on (checking at once that the file can be written,
    /// so the caller can say why not) or off.
    pub fn set_enabled(&mut self, on: bool) -> std::io::Result<()> {
        if !on {
            self.enabled = false;
            self.tx = None; // the writer drains its queue, flushes and ends
            if let Some(w) = self.writer.take() {
                let _ = w.join();
            }
            return Ok(());
        }
        if self.tx.is_none() {
            let writer = Writer::open(self.dir.clone(), self.max_bytes, self.keep)?;
            let (tx, rx) = sync_channel(QUEUE);
            let handle = std::thread::Builder::new()
                .name("sip-trace".into())
                .spawn(move || writer.run(rx))?;
            self.tx = Some(tx);
            self.writer = Some(handle);
        }
        self.enabled = true;
        Ok(())
    }

    /// Queue one message (no-op when off). Never blocks.
    pub fn record(&mut self, dir: Dir, peer: Peer, data: &[u8]) {
        if !self.enabled {
            return;
        }
        let Some(tx) = &self.tx else { return };
        let record = Record {
            when: SystemTime::now(),
            dir,
            peer,
            data: data.to_vec(),
        };
        match tx.try_send(record) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => self.dropped += 1,
            Err(TrySendError::Disconnected(_)) => {
                tracing::warn!("SIP trace stopped (its writer ended)");
                self.enabled = false;
                self.tx = None;
            }
        }
    }
}

/// The writer thread's state: the open file and its rotation.
struct Writer {
    dir: PathBuf,
    max_bytes: u64,
    keep: u32,
    file: Option<BufWriter<File>>,
    written: u64,
}

impl Writer {
    fn open(dir: PathBuf, max_bytes: u64, keep: u32) -> std::io::Result<Writer> {
        let mut w = Writer {
            dir,
            max_bytes,
            keep,
            file: None,
            written: 0,
        };
        w.reopen()?;
        Ok(w)
    }

    fn path(&self) -> PathBuf {
        self.dir.join("sip-trace.log")
    }

    fn run(mut self, rx: Receiver<Record>) {
        while let Ok(r) = rx.recv() {
            if let Err(e) = self.write(&r) {
                tracing::warn!("SIP trace: cannot write {}: {e}", self.path().display());
                self.file = None;
            }
            // Flush when the queue is drained: readers see whole messages.
            if let Ok(r) = rx.try_recv() {
                if let Err(e) = self.write(&r) {
                    tracing::warn!("SIP trace: cannot write {}: {e}", self.path().display());
                    self.file = None;
                }
                continue;
            }
            if let Some(f) = self.file.as_mut() {
                let _ = f.flush();
            }
        }
        if let Some(f) = self.file.as_mut() {
            let _ = f.flush();
        }
    }

    fn write(&mut self, r: &Record) -> std::io::Result<()> {
        if self.file.is_none() || self.written >= self.max_bytes {
            self.reopen()?;
        }
        let arrow = match r.dir {
            Dir::Sent => "SENT to",
            Dir::Received => "RECEIVED from",
        };
        let text = format!(
            "==== {} {arrow} {} {} ({} bytes)\n{}\n\n",
            timestamp(r.when),
            r.peer.transport.via_token(),
            r.peer.addr,
            r.data.len(),
            redact_sip(&r.data).trim_end()
        );
        if let Some(f) = self.file.as_mut() {
            f.write_all(text.as_bytes())?;
            self.written += text.len() as u64;
        }
        Ok(())
    }

    fn reopen(&mut self) -> std::io::Result<()> {
        if let Some(mut f) = self.file.take() {
            f.flush()?;
        }
        std::fs::create_dir_all(&self.dir)?;
        let path = self.path();
        let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        if size >= self.max_bytes {
            rotate(&path, self.keep)?;
        }
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        self.written = file.metadata().map(|m| m.len()).unwrap_or(0);
        self.file = Some(BufWriter::new(file));
        Ok(())
    }
}

/// sip-trace.log → .1 → .2 … keeping `keep` old files.
fn rotate(path: &Path, keep: u32) -> std::io::Result<()> {
    for i in (1..keep).rev() {
        let from = path.with_extension(format!("log.{i}"));
        if from.exists() {
            std::fs::rename(&from, path.with_extension(format!("log.{}", i + 1)))?;
        }
    }
    std::fs::rename(path, path.with_extension("log.1"))
}

pub(crate) fn default_dir() -> PathBuf {
    directories::ProjectDirs::from("", "", "softline")
        .map(|d| d.state_dir().unwrap_or(d.data_local_dir()).to_path_buf())
        .unwrap_or_else(std::env::temp_dir)
}

/// UTC time as `2026-11-24T14:22:07.123Z`.
pub fn timestamp(t: SystemTime) -> String {
    let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::transport::TransportKind;
    use std::time::Duration;

    #[test]
    fn timestamp_is_utc_iso() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_millis(1_795_530_127_123);
        assert_eq!(timestamp(t), "2026-11-24T14:22:07.123Z");
        assert_eq!(
            timestamp(SystemTime::UNIX_EPOCH),
            "1970-01-01T00:00:00.000Z"
        );
    }

    #[test]
    fn enabling_an_unwritable_trace_says_why() {
        let mut t = Trace::new(&TraceConfig {
            enabled: false,
            dir: Some(PathBuf::from("/proc/softline-cannot-write-here")),
            max_file_kb: 1,
            keep_files: 2,
        });
        assert!(t.set_enabled(true).is_err());
        assert!(!t.is_enabled());
    }

    #[test]
    fn trace_redacts_and_rotates() {
        let dir = std::env::temp_dir().join(format!("softline-trace-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut t = Trace::new(&TraceConfig {
            enabled: true,
            dir: Some(dir.clone()),
            max_file_kb: 1,
            keep_files: 2,
        });
        let peer = Peer {
            transport: TransportKind::Udp,
            addr: "127.0.0.1:5060".parse().unwrap(),
        };
        let msg = b"REGISTER sip:x SIP/2.0\r\nAuthorization: Digest username=\"a\", response=\"feedfacecafe\"\r\n\r\n";
        for _ in 0..40 {
            t.record(Dir::Sent, peer, msg);
        }
        // Switching off waits for the writer to flush and end.
        t.set_enabled(false).unwrap();
        let all: String = ["sip-trace.log", "sip-trace.log.1", "sip-trace.log.2"]
            .iter()
            .filter_map(|f| std::fs::read_to_string(dir.join(f)).ok())
            .collect();
        assert!(all.contains("SENT to UDP 127.0.0.1:5060"));
        assert!(
            !all.contains("feedfacecafe"),
            "digest response leaked into the trace"
        );
        assert!(dir.join("sip-trace.log.1").exists(), "no rotation happened");
        assert!(
            !dir.join("sip-trace.log.3").exists(),
            "kept more files than asked"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
