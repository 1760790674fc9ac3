//! The support bundle (`softline doctor --bundle FILE.zip`): the doctor's
//! report (JSON and text), the config with its secrets redacted, the recent
//! SIP trace files (redacted again), the sound devices and the versions. A
//! last pass replaces every password of the config wherever it might still
//! appear. The zip is written by hand (stored entries, CRC-32): small, and
//! no compression library is needed for text of a few hundred kilobytes.

use std::path::{Path, PathBuf};

use super::Report;
use crate::config::Config;

/// Text put where a secret was.
pub const REDACTED: &str = "<redacted>";
/// Trace files taken (newest first) and the most kept of each.
const MAX_TRACE_FILES: usize = 4;
const MAX_TRACE_BYTES: usize = 2 * 1024 * 1024;

/// A zip archive of stored (uncompressed) entries, in memory.
#[derive(Default)]
pub struct ZipWriter {
    out: Vec<u8>,
    central: Vec<u8>,
    count: u16,
}

/// DOS date of 1980-01-01 (the format's epoch): entries carry no real time.
const DOS_DATE: u16 = (1 << 5) | 1;

impl ZipWriter {
    pub fn new() -> ZipWriter {
        ZipWriter::default()
    }

    /// Add a file. Names use `/`; sizes above 4 GiB are not supported
    /// (bundles are far smaller), nor more than 65535 entries.
    pub fn add(&mut self, name: &str, data: &[u8]) {
        let crc = crc32fast::hash(data);
        let size = u32::try_from(data.len()).unwrap_or(u32::MAX);
        let offset = u32::try_from(self.out.len()).unwrap_or(u32::MAX);
        let name_len = u16::try_from(name.len()).unwrap_or(u16::MAX);
        let name = name
            .as_bytes()
            .get(..usize::from(name_len))
            .unwrap_or_default();
        // Local file header (APPNOTE 4.3.7).
        let out = &mut self.out;
        out.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
        out.extend_from_slice(&20u16.to_le_bytes()); // version needed
        out.extend_from_slice(&0x0800u16.to_le_bytes()); // UTF-8 names
        out.extend_from_slice(&0u16.to_le_bytes()); // stored
        out.extend_from_slice(&0u16.to_le_bytes()); // time
        out.extend_from_slice(&DOS_DATE.to_le_bytes());
        out.extend_from_slice(&crc.to_le_bytes());
        out.extend_from_slice(&size.to_le_bytes());
        out.extend_from_slice(&size.to_le_bytes());
        out.extend_from_slice(&name_len.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes()); // extra
        out.extend_from_slice(name);
        out.extend_from_slice(data);
        // Central directory header (APPNOTE 4.3.12).
        let c = &mut self.central;
        c.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
        c.extend_from_slice(&20u16.to_le_bytes()); // made by
        c.extend_from_slice(&20u16.to_le_bytes()); // needed
        c.extend_from_slice(&0x0800u16.to_le_bytes());
        c.extend_from_slice(&0u16.to_le_bytes());
        c.extend_from_slice(&0u16.to_le_bytes());
        c.extend_from_slice(&DOS_DATE.to_le_bytes());
        c.extend_from_slice(&crc.to_le_bytes());
        c.extend_from_slice(&size.to_le_bytes());
        c.extend_from_slice(&size.to_le_bytes());
        c.extend_from_slice(&name_len.to_le_bytes());
        c.extend_from_slice(&[0; 8]); // extra, comment, disk, internal attrs
        c.extend_from_slice(&0u32.to_le_bytes()); // external attrs
        c.extend_from_slice(&offset.to_le_bytes());
        c.extend_from_slice(name);
        self.count = self.count.saturating_add(1);
    }

    /// The archive bytes.
    pub fn finish(mut self) -> Vec<u8> {
        let cd_offset = u32::try_from(self.out.len()).unwrap_or(u32::MAX);
        let cd_size = u32::try_from(self.central.len()).unwrap_or(u32::MAX);
        self.out.extend_from_slice(&self.central);
        // End of central directory (APPNOTE 4.3.16).
        self.out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
        self.out.extend_from_slice(&[0; 4]); // disk numbers
        self.out.extend_from_slice(&self.count.to_le_bytes());
        self.out.extend_from_slice(&self.count.to_le_bytes());
        self.out.extend_from_slice(&cd_size.to_le_bytes());
        self.out.extend_from_slice(&cd_offset.to_le_bytes());
        self.out.extend_from_slice(&0u16.to_le_bytes()); // comment
        self.out
    }
}

/// Whether a config key holds a secret (its value is redacted). The TLS
/// pin is a public fingerprint and stays.
fn is_secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    k.contains("password") || k.contains("secret") || k.contains("srtp_key") || k == "key"
}

/// Replace secret values in a TOML tree; collect them (to scrub elsewhere).
fn redact_toml(value: &mut toml::Value, secrets: &mut Vec<String>) {
    match value {
        toml::Value::Table(table) => {
            for (key, v) in table.iter_mut() {
                if is_secret_key(key) {
                    collect_strings(v, secrets);
                    *v = toml::Value::String(REDACTED.into());
                } else {
                    redact_toml(v, secrets);
                }
            }
        }
        toml::Value::Array(items) => items.iter_mut().for_each(|v| redact_toml(v, secrets)),
        _ => {}
    }
}

fn collect_strings(v: &toml::Value, out: &mut Vec<String>) {
    match v {
        toml::Value::String(s) if !s.is_empty() => out.push(s.clone()),
        toml::Value::Array(items) => items.iter().for_each(|i| collect_strings(i, out)),
        toml::Value::Table(t) => t.values().for_each(|i| collect_strings(i, out)),
        _ => {}
    }
}

/// The config file with its secrets redacted, and the secrets found. An
/// unreadable or non-TOML file is described, never copied.
fn redacted_config(path: &Path) -> (String, Vec<String>) {
    let mut secrets = Vec::new();
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => return (format!("# {}: cannot read: {e}\n", path.display()), secrets),
    };
    match text.parse::<toml::Table>() {
        Ok(table) => {
            let mut value = toml::Value::Table(table);
            redact_toml(&mut value, &mut secrets);
            let body = toml::to_string(&value).unwrap_or_default();
            (
                format!("# {} (secrets redacted)\n{body}", path.display()),
                secrets,
            )
        }
        Err(e) => (
            format!(
                "# {}: not valid TOML, so not included (it may hold secrets): {}\n",
                path.display(),
                e.message()
            ),
            secrets,
        ),
    }
}

/// The recent trace files (newest first), each redacted again.
fn trace_files(config: Option<&Config>) -> Vec<(String, String)> {
    let Some(config) = config.filter(|c| c.trace.enabled) else {
        return Vec::new();
    };
    let dir = config
        .trace
        .dir
        .clone()
        .unwrap_or_else(crate::runtime::trace::default_dir);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut files: Vec<(std::time::SystemTime, PathBuf)> = entries
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with("sip-trace"))
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .collect();
    files.sort_by_key(|f| std::cmp::Reverse(f.0));
    files
        .into_iter()
        .take(MAX_TRACE_FILES)
        .filter_map(|(_, path)| {
            let data = std::fs::read(&path).ok()?;
            let tail = data
                .get(data.len().saturating_sub(MAX_TRACE_BYTES)..)
                .unwrap_or_default();
            let name = path.file_name()?.to_string_lossy().into_owned();
            Some((
                format!("sip-trace/{name}"),
                crate::sip::redact::redact_sip(tail),
            ))
        })
        .collect()
}

fn devices_json() -> String {
    let list: Vec<serde_json::Value> = crate::audio::device::list_devices()
        .into_iter()
        .map(|d| {
            serde_json::json!({
                "name": d.name, "input": d.is_input, "output": d.is_output,
                "default": d.is_default, "rate": d.default_rate, "channels": d.channels,
            })
        })
        .collect();
    serde_json::to_string_pretty(&list).unwrap_or_default()
}

fn versions() -> String {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let os_release = read("/etc/os-release");
    let pretty = os_release
        .lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|v| v.trim_matches('"').to_string())
        .unwrap_or_default();
    format!(
        "softline {}\nos: {} {} {}\nkernel: {}\n",
        env!("CARGO_PKG_VERSION"),
        std::env::consts::OS,
        std::env::consts::ARCH,
        pretty,
        read("/proc/sys/kernel/osrelease").trim()
    )
}

/// Replace every secret in `text`.
fn scrub(text: &str, secrets: &[String]) -> String {
    let mut out = text.to_string();
    for s in secrets {
        if !s.is_empty() {
            out = out.replace(s.as_str(), REDACTED);
        }
    }
    out
}

/// The bundle's bytes.
pub fn build(config_path: &Path, report: &Report) -> Vec<u8> {
    let (config_text, mut secrets) = redacted_config(config_path);
    let config = Config::load(config_path).ok();
    if let Some(c) = &config {
        for a in &c.accounts {
            if !a.password.is_empty() {
                secrets.push(a.password.clone());
            }
        }
    }
    // Longest first, so a secret containing another is replaced whole.
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    secrets.dedup();
    let mut files: Vec<(String, String)> = vec![
        (
            "report.json".into(),
            serde_json::to_string_pretty(&report.to_json()).unwrap_or_default(),
        ),
        ("report.txt".into(), report.to_text()),
        ("config.toml".into(), config_text),
    ];
    files.extend(trace_files(config.as_ref()));
    files.push(("devices.json".into(), devices_json()));
    files.push(("versions.txt".into(), versions()));
    let mut zip = ZipWriter::new();
    for (name, text) in files {
        zip.add(&name, scrub(&text, &secrets).as_bytes());
    }
    zip.finish()
}

/// Write the bundle to `path` (replacing it).
pub fn write(path: &Path, config_path: &Path, report: &Report) -> std::io::Result<()> {
    std::fs::write(path, build(config_path, report))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zip_layout_is_valid() {
        let mut zip = ZipWriter::new();
        zip.add("a.txt", b"hello");
        zip.add("dir/b.txt", b"");
        let bytes = zip.finish();
        // First local header, its CRC and the name.
        assert_eq!(bytes.get(..4), Some(&[0x50, 0x4b, 0x03, 0x04][..]));
        assert_eq!(
            bytes.get(14..18),
            Some(&crc32fast::hash(b"hello").to_le_bytes()[..])
        );
        assert_eq!(bytes.get(30..35), Some(&b"a.txt"[..]));
        assert_eq!(bytes.get(35..40), Some(&b"hello"[..]));
        // End record: two entries, central directory where it says.
        let eocd = bytes.len() - 22;
        assert_eq!(
            bytes.get(eocd..eocd + 4),
            Some(&[0x50, 0x4b, 0x05, 0x06][..])
        );
        assert_eq!(bytes.get(eocd + 10..eocd + 12), Some(&[2, 0][..]));
        let cd_offset = u32::from_le_bytes(bytes[eocd + 16..eocd + 20].try_into().unwrap());
        assert_eq!(
            bytes.get(cd_offset as usize..cd_offset as usize + 4),
            Some(&[0x50, 0x4b, 0x01, 0x02][..])
        );
    }

    #[test]
    fn config_secrets_redacted_pin_kept() {
        let mut v: toml::Value = toml::from_str(
            "[[account]]\nid = \"a\"\npassword = \"s3cret\"\ntls_pin_sha256 = \"SHA256:AA\"\n\
             [x]\nauth_password = \"other\"\n",
        )
        .unwrap();
        let mut secrets = Vec::new();
        redact_toml(&mut v, &mut secrets);
        let text = toml::to_string(&v).unwrap();
        assert!(
            !text.contains("s3cret") && !text.contains("other"),
            "{text}"
        );
        assert!(text.contains("SHA256:AA"), "{text}");
        assert_eq!(secrets, ["s3cret", "other"]);
        assert_eq!(scrub("x s3cret y", &secrets), "x <redacted> y");
    }
}
