//! The call history on disk: one JSON object per line in `history.jsonl`
//! under the XDG data dir (or `[history] file`), appended when the core
//! emits [`Event::History`](crate::phone::Event::History), trimmed to
//! `[history] max_entries`, read back newest first by `ctl history`.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::config::HistorySection;
use crate::phone::HistoryEntry;

/// The history file and its limit.
pub struct History {
    path: Option<PathBuf>,
    max_entries: usize,
    /// Lines in the file, once counted.
    count: Option<usize>,
}

impl History {
    /// The store `[history]` asks for (`None` path: no data dir known).
    pub fn new(cfg: &HistorySection) -> History {
        let path = cfg.file.clone().or_else(|| {
            directories::ProjectDirs::from("", "", "softline")
                .map(|d| d.data_dir().join("history.jsonl"))
        });
        History {
            path,
            max_entries: cfg.max_entries.max(1),
            count: None,
        }
    }

    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Append one finished call, stamped with wall-clock start, answer and
    /// end (`end` = now; start = end − ring − talk).
    pub fn append(&mut self, entry: &HistoryEntry, end: SystemTime) {
        let Some(path) = self.path.clone() else {
            return;
        };
        let line = match record(entry, end) {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!("call history entry not written: {e}");
                return;
            }
        };
        if let Err(e) = self.write(&path, &line) {
            tracing::warn!("cannot write the call history {}: {e}", path.display());
        }
    }

    fn write(&mut self, path: &Path, line: &str) -> std::io::Result<()> {
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir)?;
        }
        let count = match self.count {
            Some(c) => c,
            None => fs::read_to_string(path)
                .map(|t| t.lines().filter(|l| !l.trim().is_empty()).count())
                .unwrap_or(0),
        };
        let mut f = OpenOptions::new().create(true).append(true).open(path)?;
        writeln!(f, "{line}")?;
        drop(f);
        let count = count + 1;
        self.count = Some(count);
        if count > self.max_entries {
            self.trim(path)?;
        }
        Ok(())
    }

    /// Keep the newest `max_entries` lines (rewritten through a temporary
    /// file so a crash never leaves half a history).
    fn trim(&mut self, path: &Path) -> std::io::Result<()> {
        let text = fs::read_to_string(path)?;
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        let keep = &lines[lines.len().saturating_sub(self.max_entries)..];
        let tmp = path.with_extension("jsonl.tmp");
        let mut out = String::with_capacity(text.len());
        for l in keep {
            out.push_str(l);
            out.push('\n');
        }
        fs::write(&tmp, out)?;
        fs::rename(&tmp, path)?;
        self.count = Some(keep.len());
        Ok(())
    }

    /// The newest `limit` entries (all when `None`), newest first. Lines
    /// that are not JSON objects are skipped with a log line.
    pub fn list(&self, limit: Option<usize>) -> Vec<Value> {
        let Some(path) = &self.path else {
            return Vec::new();
        };
        let text = match fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
            Err(e) => {
                tracing::warn!("cannot read the call history {}: {e}", path.display());
                return Vec::new();
            }
        };
        let mut out = Vec::new();
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate().rev() {
            if line.trim().is_empty() {
                continue;
            }
            match serde_json::from_str::<Value>(line) {
                Ok(v) if v.is_object() => out.push(v),
                _ => tracing::warn!(
                    "call history {} line {}: not a JSON object, skipped",
                    path.display(),
                    i + 1
                ),
            }
            if limit.is_some_and(|n| out.len() >= n) {
                break;
            }
        }
        out
    }
}

/// The JSON line for an entry ended at `end`.
fn record(entry: &HistoryEntry, end: SystemTime) -> Result<String, serde_json::Error> {
    let talk = Duration::from_secs_f64(entry.talk_secs.max(0.0));
    let ring = Duration::from_secs_f64(entry.ring_secs.max(0.0));
    let answered = end.checked_sub(talk).unwrap_or(end);
    let start = answered.checked_sub(ring).unwrap_or(answered);
    let mut v = serde_json::to_value(entry)?;
    v["start"] = Value::String(rfc3339(start));
    if entry.talk_secs > 0.0 || entry.disposition == crate::phone::Disposition::Answered {
        v["answer"] = Value::String(rfc3339(answered));
    }
    v["end"] = Value::String(rfc3339(end));
    serde_json::to_string(&v)
}

/// `2024-05-01T12:34:56.789Z` (UTC).
pub fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, day) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_millis()
    )
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian
/// (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::phone::{Direction, Disposition};

    fn entry(n: u64) -> HistoryEntry {
        HistoryEntry {
            call: Some(n),
            direction: Direction::Incoming,
            remote: format!("sip:{n}@example.com"),
            account: None,
            line: Some(1),
            disposition: Disposition::Answered,
            status_code: Some(200),
            cause: Some("hung up".into()),
            ring_secs: 2.0,
            talk_secs: 10.5,
        }
    }

    #[test]
    fn dates_are_utc_rfc3339() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let t = UNIX_EPOCH + Duration::from_millis(1_709_210_096_250);
        assert_eq!(rfc3339(t), "2024-02-29T12:34:56.250Z");
    }

    #[test]
    fn appends_trims_lists_newest_first_and_skips_corrupt_lines() {
        let dir = std::env::temp_dir().join(format!("softline-history-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let file = dir.join("sub/history.jsonl");
        let mut h = History::new(&HistorySection {
            file: Some(file.clone()),
            max_entries: 3,
        });
        let end = UNIX_EPOCH + Duration::from_secs(1_000_000);
        for n in 1..=4 {
            h.append(&entry(n), end);
        }
        let all = h.list(None);
        let ids: Vec<u64> = all.iter().map(|v| v["call"].as_u64().unwrap()).collect();
        assert_eq!(ids, [4, 3, 2], "trimmed to 3, newest first");
        assert_eq!(all[0]["end"], "1970-01-12T13:46:40.000Z");
        assert_eq!(all[0]["answer"], "1970-01-12T13:46:29.500Z");
        assert_eq!(all[0]["start"], "1970-01-12T13:46:27.500Z");
        assert_eq!(all[0]["disposition"], "answered");
        // A corrupt line is skipped, the rest still listed.
        let mut f = OpenOptions::new().append(true).open(&file).unwrap();
        writeln!(f, "{{not json").unwrap();
        drop(f);
        h.append(&entry(5), end);
        let ids: Vec<u64> = h
            .list(Some(2))
            .iter()
            .map(|v| v["call"].as_u64().unwrap())
            .collect();
        assert_eq!(ids, [5, 4]);
        let _ = fs::remove_dir_all(&dir);
    }
}
