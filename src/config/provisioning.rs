//! `[provisioning]`: where the admin's profile comes from, and the pure
//! parts of fetching it: URL templating (`${username}`, `${mac}`,
//! `${hostname}`), redaction of secrets in the URL, ed25519 signatures over
//! the exact profile bytes, and checking a fetched profile against the
//! whole layer stack before it may replace the cached one. The network part
//! (HTTPS, refresh every N hours, the status) is `runtime::provisioning`.

use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};

use super::{Config, ConfigError, LayerPaths};

/// `[provisioning]`. Read from the system file only: a profile or the
/// user's file cannot point the phone at another server or key.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default)]
pub struct ProvisioningSection {
    /// The provisioned profile (a TOML file), read between the system file
    /// and the user file; the fetched profile is cached here. Default with
    /// `url`: `profile.toml` in the user's cache directory.
    pub profile_cache: Option<PathBuf>,
    /// HTTPS URL of the profile; `${username}`, `${mac}`, `${hostname}` are
    /// replaced. Fetched at start and every `refresh_hours`.
    pub url: Option<String>,
    /// Sent as `Authorization: Bearer TOKEN`.
    pub token: Option<String>,
    /// HTTP basic authentication user (with `basic_password`).
    pub basic_user: Option<String>,
    pub basic_password: Option<String>,
    /// Hours between fetches while running (minimum 1).
    pub refresh_hours: u32,
    /// PEM file of a CA trusted for the provisioning server, besides the
    /// platform's.
    pub ca_file: Option<PathBuf>,
    /// Base64 ed25519 public key: the server must also serve `URL.sig`, the
    /// base64 signature of the exact profile bytes; a profile whose
    /// signature does not verify is refused.
    pub public_key: Option<String>,
}

impl Default for ProvisioningSection {
    fn default() -> Self {
        ProvisioningSection {
            profile_cache: None,
            url: None,
            token: None,
            basic_user: None,
            basic_password: None,
            refresh_hours: 12,
            ca_file: None,
            public_key: None,
        }
    }
}

impl ProvisioningSection {
    /// The `[provisioning]` of the system file `file` (its own table only,
    /// not merged). A missing file or section is the default; a malformed
    /// one is an error naming the file and key.
    pub fn from_system_file(file: &Path) -> Result<ProvisioningSection, ConfigError> {
        let text = match std::fs::read_to_string(file) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(e) => {
                return Err(ConfigError {
                    file: file.to_path_buf(),
                    line: None,
                    key: None,
                    message: format!("cannot read the file: {e}"),
                });
            }
        };
        let config = Config::parse(&text, file)?;
        Ok(config.provisioning)
    }

    /// Checks made when the config is validated.
    pub(super) fn validate(&self) -> Result<(), (&'static str, String)> {
        if let Some(url) = &self.url
            && !url.starts_with("https://")
        {
            return Err((
                "url",
                "the provisioning URL must start with https://".into(),
            ));
        }
        if self.refresh_hours == 0 {
            return Err(("refresh_hours", "must be at least 1".into()));
        }
        if self.basic_user.is_some() != self.basic_password.is_some() {
            return Err((
                "basic_user",
                "basic_user and basic_password go together".into(),
            ));
        }
        if self.token.is_some() && self.basic_user.is_some() {
            return Err(("token", "use either token or basic_user, not both".into()));
        }
        if let Some(key) = &self.public_key {
            parse_public_key(key).map_err(|e| ("public_key", e))?;
        }
        if let Some(ca) = &self.ca_file
            && !ca.exists()
        {
            return Err(("ca_file", format!("file {} does not exist", ca.display())));
        }
        Ok(())
    }

    /// Where the profile is cached: `profile_cache` (relative to the system
    /// file's directory), else with a `url` the user's cache directory.
    pub fn cache_path(&self, system_file: &Path) -> Option<PathBuf> {
        match &self.profile_cache {
            Some(p) => Some(system_file.parent().unwrap_or(Path::new("")).join(p)),
            None if self.url.is_some() => default_cache_path(),
            None => None,
        }
    }
}

/// `profile.toml` in the user's cache directory.
pub fn default_cache_path() -> Option<PathBuf> {
    directories::ProjectDirs::from("", "", "softline").map(|d| d.cache_dir().join("profile.toml"))
}

/// The values a provisioning URL template may use.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TemplateVars {
    /// The OS login user.
    pub username: Option<String>,
    /// First non-loopback MAC address: lower-case hex, no separators.
    pub mac: Option<String>,
    pub hostname: Option<String>,
}

impl TemplateVars {
    /// This machine's values.
    pub fn from_system() -> TemplateVars {
        let env = |n: &str| std::env::var(n).ok().filter(|v| !v.is_empty());
        TemplateVars {
            username: env("USER")
                .or_else(|| env("USERNAME"))
                .or_else(|| env("LOGNAME")),
            mac: first_mac(),
            hostname: hostname(),
        }
    }
}

#[cfg(target_os = "linux")]
fn first_mac() -> Option<String> {
    let mut names: Vec<_> = std::fs::read_dir("/sys/class/net")
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .collect();
    names.sort();
    names.iter().find_map(|dir| {
        let text = std::fs::read_to_string(dir.join("address")).ok()?;
        mac_hex(&text)
    })
}

#[cfg(not(target_os = "linux"))]
fn first_mac() -> Option<String> {
    None
}

/// `AA:bb:...` → `aabb...`; `None` for an all-zero (loopback) or malformed
/// address.
pub fn mac_hex(text: &str) -> Option<String> {
    let hex: String = text
        .trim()
        .chars()
        .filter(|c| !matches!(c, ':' | '-'))
        .collect::<String>()
        .to_ascii_lowercase();
    (hex.len() == 12 && hex.chars().all(|c| c.is_ascii_hexdigit()) && hex != "000000000000")
        .then_some(hex)
}

fn hostname() -> Option<String> {
    if let Ok(h) = std::fs::read_to_string("/proc/sys/kernel/hostname") {
        let h = h.trim();
        if !h.is_empty() {
            return Some(h.to_string());
        }
    }
    ["HOSTNAME", "COMPUTERNAME"]
        .iter()
        .find_map(|n| std::env::var(n).ok().filter(|v| !v.is_empty()))
}

/// Percent-encode a value for a URL path or query (RFC 3986 unreserved kept).
fn encode(value: &str) -> String {
    let mut out = String::new();
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Replace `${username}`, `${mac}`, `${hostname}` in `template`
/// (percent-encoded). An unknown name, an unclosed `${` or a value this
/// machine does not have is an error.
pub fn expand_url(template: &str, vars: &TemplateVars) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(at) = rest.find("${") {
        out.push_str(&rest[..at]);
        let after = &rest[at + 2..];
        let end = after.find('}').ok_or_else(|| {
            format!(
                "unclosed `${{` in the provisioning URL at `{}`",
                &rest[at..]
            )
        })?;
        let name = &after[..end];
        let value = match name {
            "username" => &vars.username,
            "mac" => &vars.mac,
            "hostname" => &vars.hostname,
            other => {
                return Err(format!(
                    "unknown `${{{other}}}` in the provisioning URL \
                     (known: ${{username}}, ${{mac}}, ${{hostname}})"
                ));
            }
        };
        let value = value
            .as_deref()
            .ok_or_else(|| format!("`${{{name}}}`: this machine has no {name}"))?;
        out.push_str(&encode(value));
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The URL with secrets hidden: a password in the user info and the values
/// of secret-looking query parameters become `***`.
pub fn redact_url(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{user}:***@{host}")
        }
        None => authority.to_string(),
    };
    let path = match path.split_once('?') {
        Some((p, query)) => {
            let params: Vec<String> = query
                .split('&')
                .map(|kv| match kv.split_once('=') {
                    Some((k, _))
                        if super::is_secret_key(&k.to_ascii_lowercase())
                            || k.eq_ignore_ascii_case("key") =>
                    {
                        format!("{k}=***")
                    }
                    _ => kv.to_string(),
                })
                .collect();
            format!("{p}?{}", params.join("&"))
        }
        None => path.to_string(),
    };
    if scheme.is_empty() {
        format!("{authority}{path}")
    } else {
        format!("{scheme}://{authority}{path}")
    }
}

/// A base64 ed25519 public key (32 bytes).
pub fn parse_public_key(text: &str) -> Result<VerifyingKey, String> {
    let bytes = B64
        .decode(text.trim())
        .map_err(|e| format!("not base64: {e}"))?;
    let bytes: [u8; 32] = bytes
        .try_into()
        .map_err(|_| "an ed25519 public key is 32 bytes".to_string())?;
    VerifyingKey::from_bytes(&bytes).map_err(|_| "not a valid ed25519 public key".to_string())
}

/// Does `signature` (base64 text, as served at `URL.sig`) sign exactly
/// `profile` with `public_key`?
pub fn verify_signature(public_key: &str, profile: &[u8], signature: &str) -> Result<(), String> {
    let key = parse_public_key(public_key).map_err(|e| format!("public_key: {e}"))?;
    let sig = B64
        .decode(signature.trim())
        .map_err(|_| "signature does not match (the .sig is not base64)".to_string())?;
    let sig = Signature::from_slice(&sig)
        .map_err(|_| "signature does not match (the .sig is not 64 bytes)".to_string())?;
    key.verify(profile, &sig)
        .map_err(|_| "signature does not match".to_string())
}

/// A new key pair from 32 random bytes: (secret key file text, public key),
/// both base64.
pub fn keygen(seed: [u8; 32]) -> (String, String) {
    let key = SigningKey::from_bytes(&seed);
    (
        B64.encode(key.to_bytes()),
        B64.encode(key.verifying_key().to_bytes()),
    )
}

/// Sign `profile` with the secret key file text (base64 of 32 bytes, as
/// `keygen` writes it): the base64 signature.
pub fn sign(secret_key: &str, profile: &[u8]) -> Result<String, String> {
    let bytes = B64
        .decode(secret_key.trim())
        .map_err(|e| format!("the key file is not base64: {e}"))?;
    let bytes: [u8; 32] = bytes
        .try_into()
        .map_err(|_| "the key file must hold a 32-byte ed25519 secret key".to_string())?;
    let key = SigningKey::from_bytes(&bytes);
    Ok(B64.encode(key.sign(profile).to_bytes()))
}

/// Write `bytes` to `path` atomically (a temporary file beside it, then a
/// rename), readable by the owner only on unix.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = tmp_path(path);
    write_private(&tmp, bytes)?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".new");
    path.with_file_name(name)
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// Check a fetched profile as the phone would load it: parsed as the
/// profile layer between `paths.system` and `paths.user`, the whole stack
/// validated. Then, only if it is good, it replaces `cache` atomically
/// (with `signature`, when given, beside it as `CACHE.sig`). Errors name
/// `source` (the redacted URL) as the file, with the line and key.
pub fn install_profile(
    paths: &LayerPaths,
    cache: &Path,
    text: &[u8],
    signature: Option<&str>,
    source: &str,
) -> Result<(), String> {
    let utf8 = std::str::from_utf8(text).map_err(|_| format!("{source}: not UTF-8 text"))?;
    if let Some(dir) = cache.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let tmp = tmp_path(cache);
    let tmp_sig = sig_path(&tmp);
    // The cache never holds the secrets: memory (and the keyring) do.
    let (stripped, secrets, empty) = super::profile_secrets::strip(utf8);
    let before = super::profile_secrets::remember(&secrets);
    let tmp_list = super::profile_secrets::list_path(&tmp);
    let cleanup = || {
        let _ = std::fs::remove_file(&tmp);
        let _ = std::fs::remove_file(&tmp_sig);
        let _ = std::fs::remove_file(&tmp_list);
    };
    let cleanup = || {
        cleanup();
        super::profile_secrets::forget(before.clone());
    };
    let list = super::profile_secrets::list_text(&secrets);
    let written = write_private(&tmp, stripped.as_bytes())
        .and_then(|()| write_private(&tmp_list, list.as_bytes()))
        .and_then(|()| match signature {
            Some(sig) => write_private(&tmp_sig, sig.as_bytes()),
            None => Ok(()),
        });
    if let Err(e) = written {
        cleanup();
        return Err(format!("cannot write {}: {e}", tmp.display()));
    }
    let candidate = LayerPaths {
        system: paths.system.clone(),
        profile: Some(tmp.clone()),
        user: paths.user.clone(),
    };
    if let Err(mut e) = candidate.load(false) {
        cleanup();
        if e.file == tmp {
            e.file = PathBuf::from(source);
        }
        return Err(e.to_string());
    }
    let sig_file = sig_path(cache);
    let renamed = match signature {
        Some(_) => std::fs::rename(&tmp_sig, &sig_file),
        None => match std::fs::remove_file(&sig_file) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        },
    }
    .and_then(|()| std::fs::rename(&tmp_list, super::profile_secrets::list_path(cache)))
    .and_then(|()| std::fs::rename(&tmp, cache));
    renamed.map_err(|e| {
        cleanup();
        format!("cannot replace {}: {e}", cache.display())
    })?;
    super::profile_secrets::commit(&secrets, &empty);
    Ok(())
}

/// With a `public_key` in the system file, a cached profile is used only
/// if `PROFILE.sig` beside it signs it (so editing the cache does not get
/// around the admin's signature).
/// `bytes` is the profile with its secrets put back (see
/// `profile_secrets.rs`).
pub(super) fn check_cached(public_key: &str, profile: &Path, bytes: &[u8]) -> Result<(), String> {
    let sig = std::fs::read_to_string(sig_path(profile))
        .map_err(|_| format!("no signature file {}", sig_path(profile).display()))?;
    verify_signature(public_key, bytes, &sig)
}

/// The cached profile as the server sent it (secrets put back from the
/// keyring or memory), `None` when there is none.
pub fn read_cached(cache: &Path) -> Option<Vec<u8>> {
    let text = std::fs::read_to_string(cache).ok()?;
    Some(super::profile_secrets::restore(&text, cache).0.into_bytes())
}

/// `FILE.sig` beside `file`.
pub fn sig_path(file: &Path) -> PathBuf {
    let mut name = file.file_name().unwrap_or_default().to_os_string();
    name.push(".sig");
    file.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> TemplateVars {
        TemplateVars {
            username: Some("agent 7".into()),
            mac: Some("0a1b2c3d4e5f".into()),
            hostname: Some("desk-12".into()),
        }
    }

    #[test]
    fn templates_expand_and_encode() {
        assert_eq!(
            expand_url(
                "https://prov.example.com/${username}/${mac}.toml?h=${hostname}",
                &vars()
            )
            .unwrap(),
            "https://prov.example.com/agent%207/0a1b2c3d4e5f.toml?h=desk-12"
        );
        assert_eq!(
            expand_url("https://p.example/x.toml", &vars()).unwrap(),
            "https://p.example/x.toml"
        );
    }

    #[test]
    fn template_errors_say_what() {
        let e = expand_url("https://p/${user}.toml", &vars()).unwrap_err();
        assert!(e.contains("unknown `${user}`"), "{e}");
        let e = expand_url("https://p/${mac.toml", &vars()).unwrap_err();
        assert!(e.contains("unclosed"), "{e}");
        let e = expand_url("https://p/${mac}", &TemplateVars::default()).unwrap_err();
        assert!(e.contains("no mac"), "{e}");
    }

    #[test]
    fn mac_addresses_normalised_and_loopback_skipped() {
        assert_eq!(
            mac_hex("0A:1B:2C:3D:4E:5F\n").as_deref(),
            Some("0a1b2c3d4e5f")
        );
        assert_eq!(mac_hex("00:00:00:00:00:00"), None);
        assert_eq!(mac_hex("garbage"), None);
    }

    #[test]
    fn urls_are_redacted() {
        assert_eq!(
            redact_url("https://bob:hunter2@p.example/a.toml?token=abc&x=1"),
            "https://bob:***@p.example/a.toml?token=***&x=1"
        );
        assert_eq!(
            redact_url("https://p.example/a.toml"),
            "https://p.example/a.toml"
        );
    }

    #[test]
    fn signatures_verify_only_for_the_exact_bytes() {
        let (secret, public) = keygen([7; 32]);
        let sig = sign(&secret, b"[phone]\nlines = 2\n").unwrap();
        verify_signature(&public, b"[phone]\nlines = 2\n", &sig).unwrap();
        let e = verify_signature(&public, b"[phone]\nlines = 3\n", &sig).unwrap_err();
        assert_eq!(e, "signature does not match");
        let (_, other) = keygen([8; 32]);
        assert!(verify_signature(&other, b"[phone]\nlines = 2\n", &sig).is_err());
        assert!(verify_signature(&public, b"x", "not base64!").is_err());
        assert!(parse_public_key("AAAA").is_err());
    }

    #[test]
    fn section_validation() {
        let s = ProvisioningSection {
            url: Some("http://p.example/x".into()),
            ..Default::default()
        };
        assert_eq!(s.validate().unwrap_err().0, "url");
        let s = ProvisioningSection {
            url: Some("https://p.example/x".into()),
            basic_user: Some("u".into()),
            ..Default::default()
        };
        assert_eq!(s.validate().unwrap_err().0, "basic_user");
        let s = ProvisioningSection {
            public_key: Some("bm90IGEga2V5".into()),
            ..Default::default()
        };
        assert_eq!(s.validate().unwrap_err().0, "public_key");
    }
}
