//! The provisioning URL end to end: a local HTTPS server (rustls, the test's
//! own CA handed to Softline as `[provisioning] ca_file`) serves a profile
//! to a real `softline --headless` and to `softline provision fetch`:
//! fetched, cached and used; the cache used when the server is down; a
//! tampered signed profile and a profile with a syntax error refused with
//! the last good one kept; the token sent in the Authorization header.
#![cfg(unix)]
#![allow(clippy::disallowed_methods)]

mod support;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use support::{TestDir, make_tls_files, poll};

const SOFTLINE: &str = env!("CARGO_BIN_EXE_softline");
const TOKEN: &str = "tok-3f9a-secret";
const AGENT: &str = "agent7";

/// Served files: path → (status, body).
type Files = Arc<Mutex<HashMap<String, (u16, Vec<u8>)>>>;

/// A tiny HTTPS server: path → (status, body); every request head kept.
struct Server {
    port: u16,
    files: Files,
    requests: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    fn start(cert: &Path, key: &Path) -> Server {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let key = PrivateKeyDer::from_pem_file(key).unwrap();
        let config = Arc::new(
            rustls::ServerConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap(),
        );
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let files: Files = Arc::default();
        let requests: Arc<Mutex<Vec<String>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (f, r, s) = (files.clone(), requests.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            for tcp in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(tcp) = tcp else { continue };
                tcp.set_read_timeout(Some(Duration::from_secs(5))).ok();
                let conn = rustls::ServerConnection::new(config.clone()).unwrap();
                let mut tls = rustls::StreamOwned::new(conn, tcp);
                let mut head = String::new();
                let mut reader = BufReader::new(&mut tls);
                loop {
                    let mut line = String::new();
                    match reader.read_line(&mut line) {
                        Ok(0) | Err(_) => break,
                        Ok(_) if line == "\r\n" => break,
                        Ok(_) => head.push_str(&line),
                    }
                }
                if head.is_empty() {
                    continue;
                }
                let path = head.split(' ').nth(1).unwrap_or("").to_string();
                r.lock().unwrap().push(head);
                let (status, body) = f
                    .lock()
                    .unwrap()
                    .get(&path)
                    .cloned()
                    .unwrap_or((404, b"not here".to_vec()));
                let mut out = format!(
                    "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                )
                .into_bytes();
                out.extend_from_slice(&body);
                let _ = tls.write_all(&out);
                tls.conn.send_close_notify();
                let _ = tls.flush();
                let mut sink = [0u8; 64];
                let _ = tls.read(&mut sink);
            }
        });
        Server {
            port,
            files,
            requests,
            stop,
            thread: Some(thread),
        }
    }

    fn serve(&self, path: &str, body: &[u8]) {
        self.files
            .lock()
            .unwrap()
            .insert(path.to_string(), (200, body.to_vec()));
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }

    /// Stop listening: connections are refused from now on.
    fn stop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = std::net::TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

fn profile(account: &str) -> String {
    format!(
        "[[account]]\nid = \"{account}\"\nusername = \"1001\"\npassword = \"provisioned-pw\"\n\
         domain = \"127.0.0.1\"\nregister = false\n\n[phone]\nlines = 3\n"
    )
}

/// The profile as cached: its password taken out (to the keyring or memory).
fn cached(account: &str) -> String {
    profile(account).replace("password = \"provisioned-pw\"", "password = \"\"")
}

/// A profile without secrets (cached byte for byte).
fn open_profile(account: &str) -> String {
    profile(account).replace("password = \"provisioned-pw\"\n", "")
}

struct Setup {
    dir: TestDir,
    system: PathBuf,
    cache: PathBuf,
}

/// A system file pointing at the server, with `extra` added to `[provisioning]`.
fn setup(label: &str, server: &Server, ca: &Path, extra: &str) -> Setup {
    let dir = TestDir::new(label);
    let cache = dir.file("cache/profile.toml");
    let system = dir.file("system.toml");
    std::fs::write(
        &system,
        format!(
            "[provisioning]\nurl = \"https://127.0.0.1:{}/${{username}}.toml\"\n\
             token = \"{TOKEN}\"\nca_file = \"{}\"\nprofile_cache = \"{}\"\n{extra}\n\
             [sip]\nlisten_udp = \"127.0.0.1:0\"\n\n[audio]\ninput = \"null\"\noutput = \"null\"\n",
            server.port,
            ca.display(),
            cache.display()
        ),
    )
    .unwrap();
    Setup { dir, system, cache }
}

fn softline(s: &Setup) -> Command {
    let mut cmd = Command::new(SOFTLINE);
    cmd.env("SOFTLINE_SYSTEM_CONFIG", &s.system)
        .env_remove("SOFTLINE_PROFILE")
        // No Secret Service here (the keyring test brings its own).
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .env("USER", AGENT)
        .env("XDG_RUNTIME_DIR", &s.dir.path)
        .env("XDG_STATE_HOME", &s.dir.path)
        .env("XDG_DATA_HOME", &s.dir.path)
        .env("XDG_CACHE_HOME", &s.dir.path)
        .env("RUST_LOG", "info")
        .arg("--config")
        .arg(s.dir.file("user.toml"));
    cmd
}

/// `softline provision fetch`: (exit ok, status JSON, stderr).
fn fetch(s: &Setup) -> (bool, Value, String) {
    let out = softline(s).args(["provision", "fetch"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let status = serde_json::from_str(stdout.trim()).unwrap_or(Value::Null);
    (
        out.status.success(),
        status,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A headless phone; its status once the control socket answers.
struct Headless {
    child: Child,
    socket: PathBuf,
    stderr: PathBuf,
}

impl Headless {
    fn start(s: &Setup, name: &str) -> Headless {
        Headless::start_with(s, name, &[])
    }

    fn start_with(s: &Setup, name: &str, env: &[(&str, &str)]) -> Headless {
        let socket = s.dir.file(&format!("{name}.sock"));
        let stderr = s.dir.file(&format!("{name}.log"));
        let child = softline(s)
            .envs(env.iter().copied())
            .arg("--headless")
            .arg("--ctl-socket")
            .arg(&socket)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .unwrap();
        Headless {
            child,
            socket,
            stderr,
        }
    }

    fn status(&mut self) -> Value {
        let got = poll(Duration::from_secs(20), || {
            if let Ok(Some(exit)) = self.child.try_wait() {
                panic!("softline exited ({exit}):\n{}", self.log());
            }
            let stream = std::os::unix::net::UnixStream::connect(&self.socket).ok()?;
            let mut w = stream.try_clone().ok()?;
            w.write_all(format!("{}\n", json!({"cmd": "status"})).as_bytes())
                .ok()?;
            let mut line = String::new();
            BufReader::new(stream).read_line(&mut line).ok()?;
            serde_json::from_str::<Value>(&line).ok()
        });
        let reply = got.unwrap_or_else(|| panic!("no status:\n{}", self.log()));
        assert_eq!(reply["ok"], json!(true), "{reply}");
        reply["result"].clone()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }
}

impl Drop for Headless {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn account_ids(status: &Value) -> Vec<String> {
    status["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn fetched_profile_is_cached_used_and_kept_when_the_server_is_down() {
    let pki = TestDir::new("prov-pki");
    let tls = make_tls_files(&pki.path);
    let mut server = Server::start(&tls.cert_file, &tls.key_file);
    let s = setup("prov-fetch", &server, &tls.ca_file, "");
    let path = format!("/{AGENT}.toml");
    server.serve(&path, profile("desk").as_bytes());

    let mut phone = Headless::start(&s, "first");
    let status = phone.status();
    assert_eq!(account_ids(&status), ["desk"], "{status:#}");
    let p = &status["provisioning"];
    assert_eq!(p["state"], "fetched", "{p}");
    assert_eq!(
        p["url"],
        format!("https://127.0.0.1:{}/{AGENT}.toml", server.port)
    );
    assert!(p["fetched_at"].as_str().unwrap().ends_with('Z'), "{p}");
    assert_eq!(p["error"], Value::Null);
    // The server saw the templated path and the token; the token is
    // nowhere in the status or the log.
    let requests = server.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert!(requests[0].starts_with(&format!("GET {path} HTTP/1.1\r\n")));
    assert!(
        requests[0].contains(&format!("Authorization: Bearer {TOKEN}\r\n")),
        "{}",
        requests[0]
    );
    assert!(!status.to_string().contains(TOKEN));
    assert!(!phone.log().contains(TOKEN));
    // No keyring on this machine: this run has the password in memory.
    let notes = status["config_warnings"].to_string();
    assert!(notes.contains("kept in memory only"), "{notes}");
    assert!(!notes.contains("provisioned-pw") && !phone.log().contains("provisioned-pw"));
    // Cached without its password, owner-only.
    assert_eq!(std::fs::read_to_string(&s.cache).unwrap(), cached("desk"));
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&s.cache).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    drop(phone);

    // Server down: the cached profile is used and the status says so.
    server.stop();
    let mut phone = Headless::start(&s, "offline");
    let status = phone.status();
    assert_eq!(account_ids(&status), ["desk"], "{status:#}");
    let p = &status["provisioning"];
    assert_eq!(p["state"], "cached", "{p}");
    assert!(
        p["error"].as_str().unwrap().contains("cannot connect"),
        "{p}"
    );
    // Without a keyring the offline start lacks the password, and says so.
    let notes = status["config_warnings"].to_string();
    assert!(
        notes.contains(
            "`account.desk.password`: the provisioned secret is not in the keyring; \
             an offline start needs the provisioning server"
        ),
        "{notes}"
    );
}

#[test]
fn bad_profile_is_refused_with_its_line_and_the_last_good_kept() {
    let pki = TestDir::new("prov-pki");
    let tls = make_tls_files(&pki.path);
    let server = Server::start(&tls.cert_file, &tls.key_file);
    let s = setup("prov-bad", &server, &tls.ca_file, "");
    let path = format!("/{AGENT}.toml");
    server.serve(&path, profile("desk").as_bytes());
    let (ok, status, err) = fetch(&s);
    assert!(ok, "{status} {err}");
    assert_eq!(status["state"], "fetched");

    // A syntax error on line 3.
    server.serve(&path, b"[phone]\nlines = 2\nring_timeout_secs = = 5\n");
    let (ok, status, _) = fetch(&s);
    assert!(!ok);
    assert_eq!(status["state"], "failed", "{status}");
    let error = status["error"].as_str().unwrap();
    let url = format!("https://127.0.0.1:{}/{AGENT}.toml", server.port);
    assert!(error.starts_with(&format!("{url}:3")), "{error}");
    // A value of the wrong type: file, line and key.
    server.serve(&path, b"[phone]\n\nlines = \"many\"\n");
    let (_, status, _) = fetch(&s);
    let error = status["error"].as_str().unwrap();
    assert!(
        error.starts_with(&format!("{url}:3: key `phone.lines`")),
        "{error}"
    );
    // The last good profile is still the cache, and the phone runs with it.
    assert_eq!(std::fs::read_to_string(&s.cache).unwrap(), cached("desk"));
    assert!(!s.cache.with_file_name("profile.toml.new").exists());
    let mut phone = Headless::start(&s, "after-bad");
    let status = phone.status();
    assert_eq!(account_ids(&status), ["desk"]);
    assert_eq!(status["provisioning"]["state"], "failed");
}

/// `softline provision keygen` into `keys/admin.key`: the key file and the
/// `public_key = "…"` line it prints for the system file.
fn admin_key(keys: &TestDir) -> (PathBuf, String) {
    let keyfile = keys.file("admin.key");
    let out = Command::new(SOFTLINE)
        .args(["provision", "keygen", "--out"])
        .arg(&keyfile)
        .output()
        .unwrap();
    assert!(out.status.success());
    let public = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(public.starts_with("public_key = \""), "{public}");
    (keyfile, public)
}

/// `softline provision sign`: writes `PROFILE.sig` beside `profile`.
fn sign(keyfile: &Path, profile: &Path) {
    let out = Command::new(SOFTLINE)
        .args(["provision", "sign", "--key"])
        .arg(keyfile)
        .arg(profile)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
}

#[test]
fn signed_profiles_verify_and_a_tampered_one_is_refused() {
    let pki = TestDir::new("prov-pki");
    let tls = make_tls_files(&pki.path);
    let server = Server::start(&tls.cert_file, &tls.key_file);
    let keys = TestDir::new("prov-keys");
    let (keyfile, public) = admin_key(&keys);
    let s = setup("prov-signed", &server, &tls.ca_file, &public);

    let good = keys.file("good.toml");
    std::fs::write(&good, open_profile("signed")).unwrap();
    sign(&keyfile, &good);
    let sig = std::fs::read(keys.file("good.toml.sig")).unwrap();
    let path = format!("/{AGENT}.toml");
    server.serve(&path, open_profile("signed").as_bytes());
    server.serve(&format!("{path}.sig"), &sig);
    let (ok, status, err) = fetch(&s);
    assert!(ok, "{status} {err}");
    assert_eq!(status["state"], "fetched");

    // Tampered: another account, the old signature.
    server.serve(&path, open_profile("evil").as_bytes());
    let (ok, status, _) = fetch(&s);
    assert!(!ok);
    assert_eq!(status["state"], "failed");
    assert_eq!(status["error"], "signature does not match");
    assert_eq!(
        std::fs::read_to_string(&s.cache).unwrap(),
        open_profile("signed")
    );

    let mut phone = Headless::start(&s, "signed");
    let status = phone.status();
    assert_eq!(account_ids(&status), ["signed"], "{status:#}");
    assert_eq!(status["provisioning"]["error"], "signature does not match");
    drop(phone);

    // Editing the cache by hand does not get around the signature either.
    std::fs::write(&s.cache, open_profile("edited")).unwrap();
    let out = softline(&s)
        .args(["config", "show", "--effective", "--json"])
        .output()
        .unwrap();
    let shown: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(!shown.to_string().contains("edited"), "{shown}");
    assert!(
        shown["warnings"]
            .to_string()
            .contains("refused: signature does not match"),
        "{shown}"
    );
}

#[test]
fn a_profile_fetched_while_running_is_cached_for_the_next_start() {
    let pki = TestDir::new("prov-pki");
    let tls = make_tls_files(&pki.path);
    let server = Server::start(&tls.cert_file, &tls.key_file);
    let s = setup("prov-refresh", &server, &tls.ca_file, "");
    let path = format!("/{AGENT}.toml");
    server.serve(&path, profile("desk").as_bytes());
    let mut phone = Headless::start_with(
        &s,
        "refresh",
        &[("SOFTLINE_PROVISIONING_REFRESH_SECS", "1")],
    );
    let status = phone.status();
    assert_eq!(status["provisioning"]["pending_restart"], false);
    server.serve(&path, profile("newdesk").as_bytes());
    let got = poll(Duration::from_secs(15), || {
        let status = phone.status();
        (status["provisioning"]["pending_restart"] == true).then_some(status)
    })
    .unwrap_or_else(|| panic!("no refresh:\n{}", phone.log()));
    // Cached for the next start; this run keeps its accounts.
    assert_eq!(got["provisioning"]["state"], "fetched");
    assert_eq!(account_ids(&got), ["desk"]);
    assert_eq!(
        std::fs::read_to_string(&s.cache).unwrap(),
        cached("newdesk")
    );
    assert!(
        phone
            .log()
            .contains("a new profile will apply at the next start")
    );
    assert!(server.requests().len() >= 2);
}

/// A fake UDP registrar: challenges REGISTER with a digest (MD5, no qop)
/// and answers 200 only when the response matches `password`. Returns the
/// port and a flag set once a REGISTER authenticated correctly.
fn digest_registrar(password: &'static str) -> (u16, Arc<AtomicBool>) {
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = sock.local_addr().unwrap().port();
    let ok = Arc::new(AtomicBool::new(false));
    let flag = ok.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        loop {
            let Ok((n, from)) = sock.recv_from(&mut buf) else {
                return;
            };
            let text = String::from_utf8_lossy(&buf[..n]).to_string();
            if !text.starts_with("REGISTER ") {
                continue;
            }
            let header = |name: &str| {
                text.lines()
                    .find(|l| {
                        l.to_ascii_lowercase()
                            .starts_with(&format!("{}:", name.to_ascii_lowercase()))
                    })
                    .map(|l| l.to_string())
            };
            let copy: String = ["Via", "From", "To", "Call-ID", "CSeq"]
                .iter()
                .filter_map(|h| header(h))
                .map(|l| format!("{l}\r\n"))
                .collect();
            let param = |auth: &str, key: &str| {
                let start = auth.find(&format!("{key}=\""))? + key.len() + 2;
                let rest = auth.get(start..)?;
                Some(rest[..rest.find('"')?].to_string())
            };
            let md5 = |s: String| {
                use md5::Digest;
                md5::Md5::digest(s.as_bytes())
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect::<String>()
            };
            let reply = match header("Authorization") {
                None => format!(
                    "SIP/2.0 401 Unauthorized\r\n{copy}WWW-Authenticate: Digest realm=\"test\", \
                     nonce=\"n0nce\", algorithm=MD5\r\nContent-Length: 0\r\n\r\n"
                ),
                Some(auth) => {
                    let user = param(&auth, "username").unwrap_or_default();
                    let uri = param(&auth, "uri").unwrap_or_default();
                    let got = param(&auth, "response").unwrap_or_default();
                    let ha1 = md5(format!("{user}:test:{password}"));
                    let ha2 = md5(format!("REGISTER:{uri}"));
                    if got == md5(format!("{ha1}:n0nce:{ha2}")) {
                        flag.store(true, Ordering::SeqCst);
                        let contact = header("Contact").unwrap_or_default();
                        format!(
                            "SIP/2.0 200 OK\r\n{copy}{contact};expires=600\r\nContent-Length: 0\r\n\r\n"
                        )
                    } else {
                        format!("SIP/2.0 403 Forbidden\r\n{copy}Content-Length: 0\r\n\r\n")
                    }
                }
            };
            let _ = sock.send_to(reply.as_bytes(), from);
        }
    });
    (port, ok)
}

/// With a keyring (a private D-Bus session, gnome-keyring unlocked): the
/// fetched profile's password goes to the keyring, never to the cache;
/// with the server gone, a new start puts it back (the admin's signature
/// verifies over the restored profile) and registers with it.
#[test]
fn provisioned_password_lives_in_the_keyring_and_an_offline_start_registers() {
    for tool in ["dbus-run-session", "gnome-keyring-daemon"] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .stdout(Stdio::null())
            .status()
            .unwrap()
            .success();
        assert!(found, "{tool} is missing: `cargo xtask deps` installs it");
    }
    let (sip_port, registered) = digest_registrar("provisioned-pw");
    let pki = TestDir::new("prov-pki");
    let tls = make_tls_files(&pki.path);
    let mut server = Server::start(&tls.cert_file, &tls.key_file);
    let keys = TestDir::new("prov-kr-keys");
    let (keyfile, public) = admin_key(&keys);
    let s = setup("prov-keyring", &server, &tls.ca_file, &public);
    let body = format!(
        "[[account]]\nid = \"desk\"\nusername = \"1001\"\npassword = \"provisioned-pw\"\n\
         domain = \"127.0.0.1:{sip_port}\"\nexpires = 600\n"
    );
    let good = keys.file("good.toml");
    std::fs::write(&good, &body).unwrap();
    sign(&keyfile, &good);
    let path = format!("/{AGENT}.toml");
    server.serve(&path, body.as_bytes());
    server.serve(
        &format!("{path}.sig"),
        &std::fs::read(keys.file("good.toml.sig")).unwrap(),
    );
    // One D-Bus session per process run; the keyring file (under
    // XDG_DATA_HOME) outlives them, unlocked again by the same password.
    let session = |args: &str| {
        let script = format!(
            "echo -n unlock-pw | gnome-keyring-daemon --unlock --components=secrets >/dev/null || exit 90\n\
             exec {SOFTLINE} {args}\n"
        );
        let cmd = softline(&s);
        let cmd_args: Vec<_> = cmd.get_args().map(|a| a.to_os_string()).collect();
        let envs: Vec<_> = cmd
            .get_envs()
            .map(|(k, v)| (k.to_os_string(), v.map(|v| v.to_os_string())))
            .collect();
        let mut c = Command::new("dbus-run-session");
        c.args(["--", "sh", "-c", &script, "sh"]).args(cmd_args);
        for (k, v) in envs {
            match v {
                Some(v) => c.env(k, v),
                None => c.env_remove(k),
            };
        }
        c.env("HOME", &s.dir.path);
        c
    };
    let out = session("\"$@\" provision fetch").output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{out:?}");
    assert!(!stderr.contains("provisioned-pw"), "{stderr}");
    let cache = std::fs::read_to_string(&s.cache).unwrap();
    assert!(!cache.contains("provisioned-pw"), "{cache}");
    assert!(cache.contains("password = \"\""), "{cache}");
    server.stop();

    // Offline: the cache, the keyring's password, the signature verified.
    let socket = s.dir.file("kr.sock");
    let log = s.dir.file("kr.log");
    let mut child = session("\"$@\" --headless --ctl-socket \"$SOCK\"")
        .env("SOCK", &socket)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let status = poll(Duration::from_secs(20), || {
        if let Ok(Some(exit)) = child.try_wait() {
            panic!(
                "softline exited ({exit}):\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        let stream = std::os::unix::net::UnixStream::connect(&socket).ok()?;
        let mut w = stream.try_clone().ok()?;
        w.write_all(b"{\"cmd\":\"status\"}\n").ok()?;
        let mut line = String::new();
        BufReader::new(stream).read_line(&mut line).ok()?;
        let v: Value = serde_json::from_str(&line).ok()?;
        (v["result"]["accounts"][0]["state"] == "registered").then_some(v)
    });
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = std::os::unix::net::UnixStream::connect(&socket)
        .and_then(|mut s| s.write_all(b"{\"cmd\":\"shutdown\"}\n"));
    let _ = child.wait();
    let status = status.unwrap_or_else(|| panic!("not registered:\n{text}"));
    assert!(registered.load(Ordering::SeqCst));
    assert_eq!(
        status["result"]["provisioning"]["state"], "cached",
        "{status}"
    );
    let notes = status["result"]["config_warnings"].to_string();
    assert!(
        !notes.contains("not in the keyring") && !notes.contains("memory only"),
        "{notes}"
    );
    assert!(!text.contains("provisioned-pw") && !status.to_string().contains("provisioned-pw"));
}
