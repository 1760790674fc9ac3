//! Fetching the provisioned profile: at start (before the config is
//! loaded, so a fresh profile applies at once) and every `refresh_hours`
//! on a thread of its own (a new profile then applies at the next start).
//!
//! The HTTPS client is a minimal blocking HTTP/1.1 GET over the rustls
//! client configuration the SIP TLS transport already uses (platform
//! verifier plus an optional CA file): one request per connection,
//! `Connection: close`, Content-Length, chunked or read-to-close bodies.
//! That adds no dependency; the profile is one small file.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use base64::Engine;
use serde::Serialize;

use crate::config::LayerPaths;
use crate::config::provisioning::{
    self as prov, ProvisioningSection, TemplateVars, expand_url, redact_url,
};
use crate::runtime::net::{TlsClientConfig, client_tls_config};

/// Largest profile (or signature) accepted.
const MAX_BODY: usize = 1 << 20;
/// How long the fetch at start may take before the phone starts with the
/// cached profile.
pub const START_TIMEOUT: Duration = Duration::from_secs(10);

/// Seconds between fetches instead of `refresh_hours` (tests).
pub const REFRESH_SECS_ENV: &str = "SOFTLINE_PROVISIONING_REFRESH_SECS";

/// `status.provisioning`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProvisioningStatus {
    /// `fetched` (the server's profile is the cached one now), `cached`
    /// (the server could not be reached: the cached profile is used),
    /// `failed` (the server's profile was refused, or nothing is cached).
    pub state: &'static str,
    /// The URL, secrets redacted.
    pub url: String,
    /// When the profile was last fetched and accepted (UTC, RFC 3339).
    pub fetched_at: Option<String>,
    pub error: Option<String>,
    /// A newer profile was fetched while running: it applies at the next start.
    pub pending_restart: bool,
}

static STATUS: Mutex<Option<ProvisioningStatus>> = Mutex::new(None);

/// The provisioning status as JSON, `None` without a provisioning URL.
pub fn status_json() -> Option<serde_json::Value> {
    let status = STATUS.lock().ok()?.clone()?;
    serde_json::to_value(status).ok()
}

fn set_status(status: ProvisioningStatus) {
    if let Ok(mut s) = STATUS.lock() {
        *s = Some(status);
    }
}

/// How the client authenticates to the provisioning server.
#[derive(Clone)]
pub enum Auth {
    Bearer(String),
    Basic { user: String, password: String },
}

impl Auth {
    fn header(&self) -> String {
        match self {
            Auth::Bearer(t) => format!("Bearer {t}"),
            Auth::Basic { user, password } => format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
            ),
        }
    }
}

/// An HTTP response.
#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub body: Vec<u8>,
}

/// `https://host[:port]/path?query` → (host, port, host header, path).
fn split_url(url: &str) -> Result<(String, u16, String, String), String> {
    let rest = url
        .strip_prefix("https://")
        .ok_or("the provisioning URL must start with https://")?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    let path = path.split('#').next().unwrap_or("");
    let path = if path.is_empty() || path.starts_with('?') {
        format!("/{path}")
    } else {
        path.to_string()
    };
    if authority.contains('@') {
        return Err("put credentials in basic_user/basic_password, not in the URL".into());
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (h, after) = v6.split_once(']').ok_or("bad IPv6 address in the URL")?;
        (h.to_string(), after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), Some(p)),
            None => (authority.to_string(), None),
        }
    };
    let port = match port {
        Some(p) => p
            .parse()
            .map_err(|_| format!("bad port `{p}` in the URL"))?,
        None => 443,
    };
    if host.is_empty() {
        return Err("no host in the URL".into());
    }
    Ok((host, port, authority.to_string(), path))
}

/// GET `url` over HTTPS. `ca_file`: a CA trusted besides the platform's.
pub fn https_get(
    url: &str,
    auth: Option<&Auth>,
    ca_file: Option<&Path>,
    timeout: Duration,
) -> Result<HttpResponse, String> {
    let (host, port, authority, path) = split_url(url)?;
    let tls = client_tls_config(&TlsClientConfig {
        extra_ca_file: ca_file.map(Path::to_path_buf),
        ..Default::default()
    })?;
    let name = rustls_pki_types::ServerName::try_from(host.clone())
        .map_err(|_| format!("`{host}` is not a valid server name"))?;
    let addrs: Vec<_> = (host.as_str(), port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {host}: {e}"))?
        .collect();
    let mut last = format!("no address for {host}");
    let mut tcp = None;
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, timeout) {
            Ok(s) => {
                tcp = Some(s);
                break;
            }
            Err(e) => last = format!("cannot connect to {addr}: {e}"),
        }
    }
    let tcp = tcp.ok_or(last)?;
    tcp.set_read_timeout(Some(timeout)).ok();
    tcp.set_write_timeout(Some(timeout)).ok();
    let conn = rustls::ClientConnection::new(tls, name).map_err(|e| e.to_string())?;
    let mut stream = rustls::StreamOwned::new(conn, tcp);
    let mut request = format!(
        "GET {path} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: Softline/{}\r\n\
         Accept: */*\r\nConnection: close\r\n",
        env!("CARGO_PKG_VERSION")
    );
    if let Some(auth) = auth {
        request.push_str(&format!("Authorization: {}\r\n", auth.header()));
    }
    request.push_str("\r\n");
    stream
        .write_all(request.as_bytes())
        .map_err(|e| format!("TLS with {host}:{port}: {e}"))?;
    let mut raw = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                raw.extend_from_slice(buf.get(..n).unwrap_or_default());
                if raw.len() > MAX_BODY + 64 * 1024 {
                    return Err(format!("the response from {host} is too large"));
                }
                if response_complete(&raw) {
                    break;
                }
            }
            // A server that closes without close_notify: judge by framing.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !raw.is_empty() => break,
            Err(e) => return Err(format!("TLS with {host}:{port}: {e}")),
        }
    }
    parse_response(&raw)
}

/// Header (lower-cased name, value) pairs.
type HeaderList = Vec<(String, String)>;

/// The head's end, status and headers.
fn parse_head(raw: &[u8]) -> Option<(usize, u16, HeaderList)> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(raw.get(..end)?).ok()?;
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Some((end + 4, status, headers))
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Has the whole response arrived (by Content-Length or the last chunk)?
fn response_complete(raw: &[u8]) -> bool {
    let Some((start, _, headers)) = parse_head(raw) else {
        return false;
    };
    if let Some(len) = header(&headers, "content-length").and_then(|l| l.parse::<usize>().ok()) {
        return raw.len() >= start + len;
    }
    if header(&headers, "transfer-encoding").is_some_and(|t| t.contains("chunked")) {
        return dechunk(raw.get(start..).unwrap_or_default()).is_some();
    }
    false
}

/// A chunked body decoded, `None` while incomplete or malformed.
fn dechunk(mut body: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let eol = body.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(body.get(..eol)?).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        body = body.get(eol + 2..)?;
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(body.get(..size)?);
        body = body.get(size + 2..)?;
        if out.len() > MAX_BODY {
            return None;
        }
    }
}

fn parse_response(raw: &[u8]) -> Result<HttpResponse, String> {
    let (start, status, headers) =
        parse_head(raw).ok_or("the server did not send an HTTP response")?;
    let rest = raw.get(start..).unwrap_or_default();
    let body = if let Some(len) = header(&headers, "content-length") {
        let len: usize = len.parse().map_err(|_| "bad Content-Length")?;
        rest.get(..len)
            .ok_or("the response was cut short")?
            .to_vec()
    } else if header(&headers, "transfer-encoding").is_some_and(|t| t.contains("chunked")) {
        dechunk(rest).ok_or("bad or cut-short chunked response")?
    } else {
        rest.to_vec()
    };
    if body.len() > MAX_BODY {
        return Err("the profile is too large (over 1 MiB)".into());
    }
    Ok(HttpResponse { status, body })
}

/// `URL.sig`: `.sig` added to the path (before any query).
pub fn signature_url(url: &str) -> String {
    match url.split_once('?') {
        Some((path, query)) => format!("{path}.sig?{query}"),
        None => format!("{url}.sig"),
    }
}

/// One fetch: download, verify, validate against the stack and replace
/// the cache. Returns the status (also kept for `status`), or `None`
/// without a provisioning URL in the system file.
pub fn refresh(paths: &LayerPaths, timeout: Duration) -> Option<ProvisioningStatus> {
    let system = paths.system.as_ref()?;
    let section = match ProvisioningSection::from_system_file(system) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!("provisioning: {e}");
            return None;
        }
    };
    let template = section.url.clone()?;
    let mut status = ProvisioningStatus {
        state: "failed",
        url: redact_url(&template),
        fetched_at: previous_fetch(),
        error: None,
        pending_restart: false,
    };
    let result = fetch_and_install(&section, system, paths, timeout, &mut status);
    if let Err((state, error)) = result {
        status.state = state;
        status.error = Some(error);
    }
    match status.error.as_deref() {
        Some(e) => tracing::warn!("provisioning: {} ({}): {e}", status.url, status.state),
        None => tracing::info!("provisioning: {} fetched", status.url),
    }
    set_status(status.clone());
    Some(status)
}

fn previous_fetch() -> Option<String> {
    STATUS.lock().ok()?.as_ref()?.fetched_at.clone()
}

type Failure = (&'static str, String);

fn fetch_and_install(
    section: &ProvisioningSection,
    system: &Path,
    paths: &LayerPaths,
    timeout: Duration,
    status: &mut ProvisioningStatus,
) -> Result<(), Failure> {
    let template = section.url.as_deref().unwrap_or_default();
    let cache: Option<PathBuf> = paths.profile.clone().or_else(|| section.cache_path(system));
    let cache = cache.ok_or((
        "failed",
        "no profile_cache and no cache directory".to_string(),
    ))?;
    // Unreachable or refusing server: the cached profile (if any) is used.
    let offline = |e: String| {
        let state = if cache.exists() { "cached" } else { "failed" };
        (state, e)
    };
    let url = expand_url(template, &TemplateVars::from_system()).map_err(|e| ("failed", e))?;
    status.url = redact_url(&url);
    let auth = match (&section.token, &section.basic_user, &section.basic_password) {
        (Some(t), _, _) => Some(Auth::Bearer(t.clone())),
        (None, Some(u), Some(p)) => Some(Auth::Basic {
            user: u.clone(),
            password: p.clone(),
        }),
        _ => None,
    };
    let get = |url: &str| -> Result<Vec<u8>, Failure> {
        let r =
            https_get(url, auth.as_ref(), section.ca_file.as_deref(), timeout).map_err(&offline)?;
        if r.status != 200 {
            return Err(offline(format!("{}: HTTP {}", redact_url(url), r.status)));
        }
        Ok(r.body)
    };
    let profile = get(&url)?;
    let signature = match &section.public_key {
        Some(key) => {
            let sig_url = signature_url(&url);
            let sig = get(&sig_url).map_err(|(_, e)| ("failed", e))?;
            let sig = String::from_utf8(sig)
                .map_err(|_| ("failed", "signature does not match".to_string()))?;
            prov::verify_signature(key, &profile, &sig).map_err(|e| ("failed", e))?;
            Some(sig)
        }
        None => None,
    };
    let unchanged = prov::read_cached(&cache).is_some_and(|old| old == profile);
    prov::install_profile(paths, &cache, &profile, signature.as_deref(), &status.url)
        .map_err(|e| ("failed", e))?;
    status.state = "fetched";
    status.fetched_at = Some(crate::runtime::trace::timestamp(SystemTime::now()));
    status.pending_restart = !unchanged;
    Ok(())
}

/// At start: fetch once (bounded by [`START_TIMEOUT`]), so the config then
/// loaded uses the freshest good profile, and keep fetching every
/// `refresh_hours` on a thread of its own. A no-op without a URL.
pub fn start(paths: &LayerPaths) {
    let Some(mut first) = refresh(paths, START_TIMEOUT) else {
        return;
    };
    // What was fetched now is what this run loads.
    first.pending_restart = false;
    set_status(first);
    let hours = paths
        .system
        .as_deref()
        .and_then(|s| ProvisioningSection::from_system_file(s).ok())
        .map_or(12, |s| s.refresh_hours.max(1));
    let every = std::env::var(REFRESH_SECS_ENV)
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|s| *s > 0)
        .map_or(
            Duration::from_secs(u64::from(hours) * 3600),
            Duration::from_secs,
        );
    let paths = paths.clone();
    let pending = Arc::new(Mutex::new(false));
    let spawned = std::thread::Builder::new()
        .name("softline-provisioning".into())
        .spawn(move || {
            loop {
                std::thread::sleep(every);
                if let Some(mut s) = refresh(&paths, START_TIMEOUT) {
                    let mut p = pending.lock().unwrap_or_else(|e| e.into_inner());
                    *p |= s.pending_restart;
                    s.pending_restart = *p;
                    if s.pending_restart {
                        tracing::info!("provisioning: a new profile will apply at the next start");
                    }
                    set_status(s);
                }
            }
        });
    if let Err(e) = spawned {
        tracing::warn!("provisioning: cannot start the refresh thread: {e}");
    }
}

/// `softline provision ...`: the admin's signing helpers.
#[derive(Debug, clap::Subcommand)]
pub enum ProvisionCmd {
    /// Make an ed25519 key pair: the secret key goes to KEYFILE (mode 600),
    /// the public key (for `[provisioning] public_key`) is printed.
    Keygen {
        /// Where to write the secret key.
        #[arg(
            long,
            value_name = "KEYFILE",
            default_value = "softline-provisioning.key"
        )]
        out: PathBuf,
    },
    /// Sign a profile: writes PROFILE.sig (base64), to serve at URL.sig.
    Sign {
        /// The secret key file `keygen` wrote.
        #[arg(long, value_name = "KEYFILE")]
        key: PathBuf,
        profile: PathBuf,
    },
    /// Fetch the profile now (as at start) and print the outcome as JSON.
    Fetch,
}

/// Run a `provision` subcommand; `user` is the user's config file.
pub fn run_cli(cmd: ProvisionCmd, user: PathBuf) -> Result<(), String> {
    match cmd {
        ProvisionCmd::Keygen { out } => {
            if out.exists() {
                return Err(format!("{} exists; not overwriting a key", out.display()));
            }
            let (secret, public) = prov::keygen(rand::random());
            prov::write_atomic(&out, format!("{secret}\n").as_bytes())
                .map_err(|e| format!("cannot write {}: {e}", out.display()))?;
            eprintln!(
                "secret key written to {} (keep it off the phones)",
                out.display()
            );
            println!("public_key = \"{public}\"");
            Ok(())
        }
        ProvisionCmd::Sign { key, profile } => {
            let secret = std::fs::read_to_string(&key)
                .map_err(|e| format!("cannot read {}: {e}", key.display()))?;
            let bytes = std::fs::read(&profile)
                .map_err(|e| format!("cannot read {}: {e}", profile.display()))?;
            let sig = prov::sign(&secret, &bytes)?;
            let out = prov::sig_path(&profile);
            std::fs::write(&out, format!("{sig}\n"))
                .map_err(|e| format!("cannot write {}: {e}", out.display()))?;
            println!("{}", out.display());
            Ok(())
        }
        ProvisionCmd::Fetch => {
            let paths = LayerPaths::discover(user);
            let status =
                refresh(&paths, START_TIMEOUT).ok_or("no [provisioning] url in the system file")?;
            println!("{}", serde_json::to_string(&status).unwrap_or_default());
            match status.state {
                "fetched" => Ok(()),
                _ => Err(status.error.unwrap_or_else(|| status.state.to_string())),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split() {
        assert_eq!(
            split_url("https://p.example:8443/a/b.toml?x=1").unwrap(),
            (
                "p.example".into(),
                8443,
                "p.example:8443".into(),
                "/a/b.toml?x=1".into()
            )
        );
        assert_eq!(
            split_url("https://[::1]/x").unwrap(),
            ("::1".into(), 443, "[::1]".into(), "/x".into())
        );
        assert!(split_url("http://p.example/").is_err());
        assert!(split_url("https://u:p@p.example/").is_err());
    }

    #[test]
    fn responses_parse_by_length_chunks_or_close() {
        let r = parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabcdef").unwrap();
        assert_eq!((r.status, r.body.as_slice()), (200, &b"abc"[..]));
        let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x\r\nde\r\n0\r\n\r\n";
        assert!(response_complete(chunked));
        assert_eq!(parse_response(chunked).unwrap().body, b"abcde");
        assert!(!response_complete(&chunked[..chunked.len() - 7]));
        let r = parse_response(b"HTTP/1.0 404 Not Found\r\n\r\nnope").unwrap();
        assert_eq!((r.status, r.body.as_slice()), (404, &b"nope"[..]));
        assert!(parse_response(b"garbage").is_err());
        assert!(parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nab").is_err());
    }

    #[test]
    fn auth_headers() {
        assert_eq!(Auth::Bearer("t0k".into()).header(), "Bearer t0k");
        let basic = Auth::Basic {
            user: "Aladdin".into(),
            password: "open sesame".into(),
        };
        // RFC 7617 §2's example.
        assert_eq!(basic.header(), "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
    }

    #[test]
    fn signature_url_goes_before_the_query() {
        assert_eq!(signature_url("https://p/a.toml"), "https://p/a.toml.sig");
        assert_eq!(
            signature_url("https://p/a.toml?m=1"),
            "https://p/a.toml.sig?m=1"
        );
    }
}
