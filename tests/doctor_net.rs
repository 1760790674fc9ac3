//! `softline doctor`'s network checks proven against the failures they claim
//! to detect, with real servers the tests start on 127.0.0.1:
//!
//! - TLS: a rustls server presenting a certificate for another host, an
//!   expired one, and one from a CA the doctor is not given — each with its
//!   own message (certificates made with the `openssl` CLI);
//! - reachability: a TCP/TLS port whose SYNs are dropped (a listener with a
//!   full accept queue) and a UDP port that swallows datagrams → "filtered",
//!   within the step's time limit;
//! - DNS: a `.invalid` name, and — in a mount namespace whose
//!   /etc/resolv.conf points at a DNS server of the test — NXDOMAIN and a DNS
//!   server that never answers.
#![cfg(unix)]
#![allow(clippy::disallowed_methods)]

mod support;

use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{
    TestDir, account_toml, make_ca_and_server_csr, openssl, pem_block, sha256_fingerprint,
};

// ---------------------------------------------------------------------------
// Running the doctor

/// Write a config with `account` (an `[[account]]` table).
fn config(dir: &TestDir, account: &str) -> PathBuf {
    let path = dir.file("softline.toml");
    let text = format!(
        "[sip]\nlisten_udp = \"127.0.0.1:0\"\nudp_keepalive_secs = 25\n\n[audio]\ninput = \"null\"\noutput = \"null\"\n\n{account}"
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// What one doctor run gave.
struct Run {
    ok: bool,
    checks: Vec<Value>,
    elapsed: Duration,
}

impl Run {
    fn check(&self, name: &str) -> &Value {
        self.checks
            .iter()
            .find(|c| c["check"] == name)
            .unwrap_or_else(|| panic!("no check {name} in {:?}", self.checks))
    }

    /// The doctor's run took at least `min_ms` and less than `max_s`.
    fn took(&self, min_ms: u64, max_s: u64, what: &str) {
        assert!(
            self.elapsed >= Duration::from_millis(min_ms)
                && self.elapsed < Duration::from_secs(max_s),
            "{what}doctor took {:?}",
            self.elapsed
        );
    }

    fn text(&self, name: &str, field: &str) -> String {
        self.check(name)[field].as_str().unwrap_or("").to_string()
    }

    /// The statuses in order must be `want`.
    fn expect(&self, want: &[(&str, &str)]) {
        let got: Vec<(String, String)> = self
            .checks
            .iter()
            .map(|c| {
                (
                    c["check"].as_str().unwrap_or("").to_string(),
                    c["status"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect();
        let want: Vec<(String, String)> = want
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        assert_eq!(
            got,
            want,
            "{}",
            serde_json::to_string_pretty(&self.checks).unwrap()
        );
    }

    /// Every check up to `failed` passed (TLS may be skipped), `failed`
    /// failed, the rest skipped.
    fn expect_failed_at(&self, failed: &str) {
        // The order itself is pinned by doctor_media's full run.
        let order = softline::doctor::CHECKS;
        let at = order.iter().position(|c| *c == failed).unwrap();
        let want: Vec<(&str, &str)> = order
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let status = if i < at {
                    if *c == "tls" && !self.uses_tls() {
                        "skipped"
                    } else {
                        "passed"
                    }
                } else if i == at {
                    "failed"
                } else {
                    "skipped"
                };
                (*c, status)
            })
            .collect();
        self.expect(&want);
        assert!(!self.ok, "exit code not 0 when a check failed");
    }

    fn uses_tls(&self) -> bool {
        self.text("config", "evidence").ends_with(" over tls")
    }
}

/// `softline --config PATH doctor --json`, optionally through `wrap` (a
/// command and its arguments put before the binary).
fn doctor_with(path: &Path, wrap: &[&str]) -> Run {
    // SOFTLINE_BIN: a copy of the binary, for a target dir shared by
    // several checkouts (the one cargo built may be replaced meanwhile).
    let bin = std::env::var("SOFTLINE_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_softline").to_string());
    let mut cmd = match wrap.split_first() {
        Some((first, rest)) => {
            let mut c = Command::new(first);
            c.args(rest).arg(&bin);
            c
        }
        None => Command::new(&bin),
    };
    cmd.arg("--config").arg(path).arg("doctor").arg("--json");
    let started = Instant::now();
    let out = cmd.output().unwrap();
    let elapsed = started.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let report: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    Run {
        ok: out.status.success(),
        checks: report.as_array().cloned().unwrap_or_default(),
        elapsed,
    }
}

fn doctor(path: &Path) -> Run {
    doctor_with(path, &[])
}

// ---------------------------------------------------------------------------
// TLS: certificates and a server presenting them

/// A server certificate and its key, signed by a test CA.
struct Cert {
    ca_file: PathBuf,
    cert_der: Vec<u8>,
    key_der: Vec<u8>,
}

/// A CA (valid now) and a server certificate signed by it with `san` and
/// validity `start`..`end` (`YYYYMMDDHHMMSSZ`, or None: from now for 2 days),
/// issued with `openssl ca` (which, unlike `openssl x509` of OpenSSL 3.0,
/// takes explicit dates).
fn make_cert(dir: &Path, san: &str, dates: Option<(&str, &str)>) -> Cert {
    make_ca_and_server_csr(dir, "Softline Net Test CA", "softline-test-server");
    std::fs::write(
        dir.join("ca.cnf"),
        format!(
            "[ca]\ndefault_ca = test\n[test]\ndatabase = index.txt\nnew_certs_dir = .\n\
             serial = serial\ndefault_md = sha256\npolicy = any\ncopy_extensions = none\n\
             unique_subject = no\n[any]\ncommonName = supplied\n[leaf]\nsubjectAltName = {san}\n\
             basicConstraints = critical,CA:FALSE\nkeyUsage = critical,digitalSignature\n\
             extendedKeyUsage = serverAuth\n"
        ),
    )
    .unwrap();
    std::fs::write(dir.join("index.txt"), "").unwrap();
    std::fs::write(dir.join("serial"), "1000\n").unwrap();
    let mut sign = vec![
        "ca",
        "-batch",
        "-config",
        "ca.cnf",
        "-cert",
        "ca.pem",
        "-keyfile",
        "ca.key",
        "-in",
        "server.csr",
        "-out",
        "server.pem",
        "-extensions",
        "leaf",
        "-notext",
    ];
    match dates {
        Some((start, end)) => sign.extend(["-startdate", start, "-enddate", end]),
        None => sign.extend(["-days", "2"]),
    }
    openssl(dir, &sign);
    let cert = std::fs::read_to_string(dir.join("server.pem")).unwrap();
    let key = std::fs::read_to_string(dir.join("server.key")).unwrap();
    Cert {
        ca_file: dir.join("ca.pem"),
        cert_der: pem_block(&cert, "CERTIFICATE"),
        key_der: pem_block(&key, "PRIVATE KEY"),
    }
}

/// A TLS server on 127.0.0.1 that completes handshakes with `cert` and
/// closes; stops when dropped.
struct TlsServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    handshakes: Arc<AtomicUsize>,
}

impl TlsServer {
    fn start(cert: &Cert) -> TlsServer {
        use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![CertificateDer::from(cert.cert_der.clone())],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(cert.key_der.clone())),
            )
            .unwrap();
        let config = Arc::new(config);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let handshakes = Arc::new(AtomicUsize::new(0));
        let (stop2, count) = (stop.clone(), handshakes.clone());
        std::thread::spawn(move || {
            while !stop2.load(Ordering::Relaxed) {
                let Ok((mut tcp, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(20));
                    continue;
                };
                let _ = tcp.set_nonblocking(false);
                let _ = tcp.set_read_timeout(Some(Duration::from_secs(3)));
                let Ok(mut conn) = rustls::ServerConnection::new(config.clone()) else {
                    continue;
                };
                while conn.is_handshaking() {
                    if conn.complete_io(&mut tcp).is_err() {
                        break;
                    }
                }
                if !conn.is_handshaking() {
                    count.fetch_add(1, Ordering::Relaxed);
                    conn.send_close_notify();
                    let _ = conn.complete_io(&mut tcp);
                    // Let the client read and close first.
                    let mut buf = [0u8; 256];
                    let _ = tcp.read(&mut buf);
                }
            }
        });
        TlsServer {
            addr,
            stop,
            handshakes,
        }
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Run the doctor against a TLS server presenting `cert`, trusting
/// `ca_file`.
fn tls_doctor(dir: &TestDir, cert: &Cert, ca_file: Option<&Path>) -> (Run, TlsServer) {
    let server = TlsServer::start(cert);
    let path = config(
        dir,
        &account_toml(
            "alice",
            "pw",
            &format!("127.0.0.1:{}", server.addr.port()),
            "tls",
            ca_file,
        ),
    );
    (doctor(&path), server)
}

/// The TLS step's evidence always shows the certificate and its
/// fingerprint; returns (evidence, advice).
fn tls_failure(run: &Run, cert: &Cert) -> (String, String) {
    run.expect_failed_at("tls");
    let ev = run.text("tls", "evidence");
    assert!(ev.contains("subject: CN=softline-test-server"), "{ev}");
    assert!(ev.contains("issuer: CN=Softline Net Test CA\n"), "{ev}");
    assert!(
        ev.contains(&format!(
            "fingerprint: {}",
            sha256_fingerprint(&cert.cert_der)
        )),
        "{ev}"
    );
    (ev, run.text("tls", "advice"))
}

#[test]
fn tls_certificate_for_another_host_names_both_names_and_the_pin() {
    let dir = TestDir::new("docnet-wronghost");
    let cert = make_cert(&dir.path, "DNS:sip.other.example", None);
    // The CA is given: the chain is trusted, only the name is wrong.
    let (run, server) = tls_doctor(&dir, &cert, Some(&cert.ca_file));
    assert!(server.handshakes.load(Ordering::Relaxed) >= 1);
    let (ev, advice) = tls_failure(&run, &cert);
    assert!(ev.contains("names: sip.other.example\n"), "{ev}");
    assert!(
        ev.contains("verification: server certificate does not match the server name"),
        "{ev}"
    );
    let fp = sha256_fingerprint(&cert.cert_der);
    assert!(
        advice.starts_with("Wrong host: the certificate is for sip.other.example, not 127.0.0.1"),
        "{advice}"
    );
    assert!(
        advice.contains(&format!("tls_pin_sha256 = \"{fp}\"")),
        "{advice}"
    );

    // Following the advice: the pin makes it pass (the pin replaces the
    // name check, as for a connect).
    let mut account = account_toml(
        "alice",
        "pw",
        &format!("127.0.0.1:{}", server.addr.port()),
        "tls",
        None,
    );
    account.push_str(&format!("tls_pin_sha256 = \"{fp}\"\n"));
    let run = doctor(&config(&dir, &account));
    let tls = run.check("tls");
    assert_eq!(tls["status"], "passed", "{tls}");
    assert!(
        run.text("tls", "evidence")
            .contains("(pinned fingerprint matches)"),
        "{tls}"
    );
}

#[test]
fn expired_tls_certificate_says_when_it_expired() {
    let dir = TestDir::new("docnet-expired");
    let cert = make_cert(
        &dir.path,
        "IP:127.0.0.1,DNS:localhost",
        Some(("20240101000000Z", "20240201120000Z")),
    );
    let (run, _server) = tls_doctor(&dir, &cert, Some(&cert.ca_file));
    let (ev, advice) = tls_failure(&run, &cert);
    assert!(
        ev.contains("valid: 2024-01-01 00:00:00 UTC to 2024-02-01 12:00:00 UTC"),
        "{ev}"
    );
    assert!(
        ev.contains("verification: server certificate has expired"),
        "{ev}"
    );
    assert!(
        advice.starts_with("Expired: the certificate expired on 2024-02-01 12:00:00 UTC"),
        "{advice}"
    );
    assert!(advice.contains("must renew it"), "{advice}");
}

#[test]
fn wrong_host_expired_and_untrusted_ca_are_three_different_messages() {
    let dir = TestDir::new("docnet-three");
    let wrong_host = make_cert(&dir.path, "DNS:sip.other.example", None);
    let (wrong_host, _s1) = tls_doctor(&dir, &wrong_host, Some(&wrong_host.ca_file));
    let dir2 = TestDir::new("docnet-three-b");
    let expired = make_cert(
        &dir2.path,
        "IP:127.0.0.1",
        Some(("20240101000000Z", "20240201000000Z")),
    );
    let (expired, _s2) = tls_doctor(&dir2, &expired, Some(&expired.ca_file));
    let dir3 = TestDir::new("docnet-three-c");
    let untrusted = make_cert(&dir3.path, "IP:127.0.0.1", None);
    // No CA given: a valid certificate for the right name from an unknown CA.
    let (untrusted, _s3) = tls_doctor(&dir3, &untrusted, None);
    let messages: Vec<(String, String)> = [&wrong_host, &expired, &untrusted]
        .iter()
        .map(|r| {
            r.expect_failed_at("tls");
            (r.text("tls", "evidence"), r.text("tls", "advice"))
        })
        .collect();
    let verdict = |ev: &str| {
        ev.lines()
            .find(|l| l.starts_with("verification: "))
            .unwrap_or("")
            .to_string()
    };
    assert_eq!(
        verdict(&messages[0].0),
        "verification: server certificate does not match the server name"
    );
    assert_eq!(
        verdict(&messages[1].0),
        "verification: server certificate has expired"
    );
    assert_eq!(
        verdict(&messages[2].0),
        "verification: server certificate is self-signed or from an untrusted CA"
    );
    assert!(
        messages[0].1.starts_with("Wrong host: "),
        "{}",
        messages[0].1
    );
    assert!(messages[1].1.starts_with("Expired: "), "{}", messages[1].1);
    assert!(
        messages[2]
            .1
            .starts_with("Not trusted: issued by `CN=Softline Net Test CA`"),
        "{}",
        messages[2].1
    );
}

// ---------------------------------------------------------------------------
// Reachability: filtered vs refused

/// A TCP port on 127.0.0.1 whose further SYNs the kernel drops: a listener
/// with backlog 0 whose accept queue is full (never accepted). Returns the
/// listener and the connections filling it (kept open).
fn tcp_port_dropping_syns() -> (socket2::Socket, Vec<TcpStream>) {
    use socket2::{Domain, Protocol, Socket, Type};
    let sock = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP)).unwrap();
    let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
    sock.bind(&addr.into()).unwrap();
    sock.listen(0).unwrap();
    let addr = sock.local_addr().unwrap().as_socket().unwrap();
    let mut fill = Vec::new();
    for _ in 0..8 {
        match TcpStream::connect_timeout(&addr, Duration::from_millis(300)) {
            Ok(s) => fill.push(s),
            Err(e) => {
                assert_eq!(e.kind(), std::io::ErrorKind::TimedOut, "{e}");
                return (sock, fill);
            }
        }
    }
    panic!("the accept queue of {addr} never filled");
}

#[test]
fn tcp_and_tls_port_dropping_packets_is_filtered_not_refused_within_the_limit() {
    let dir = TestDir::new("docnet-filtered-tcp");
    let (listener, _fill) = tcp_port_dropping_syns();
    let port = listener.local_addr().unwrap().as_socket().unwrap().port();
    for transport in ["tcp", "tls"] {
        let path = config(
            &dir,
            &account_toml("alice", "pw", &format!("127.0.0.1:{port}"), transport, None),
        );
        let run = doctor(&path);
        run.expect_failed_at("reachability");
        let ev = run.text("reachability", "evidence");
        assert_eq!(
            ev,
            format!(
                "{transport} 127.0.0.1:{port}: no answer within 5 s (packets dropped: filtered?)"
            )
        );
        assert!(!ev.contains("refused"), "{ev}");
        let advice = run.text("reachability", "advice");
        let upper = transport.to_uppercase();
        assert!(
            advice.starts_with(&format!(
                "{upper} port {port} seems filtered (no answer at all)"
            )),
            "{advice}"
        );
        // The connect limit is 5 s: waited for it, and not much longer.
        run.took(4900, 9, &format!("{transport}: "));
    }
}

#[test]
fn udp_port_that_never_answers_is_filtered_with_try_tcp_or_tls_advice() {
    let dir = TestDir::new("docnet-filtered-udp");
    let sink = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = sink.local_addr().unwrap().port();
    sink.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let received = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let (count, stop2) = (received.clone(), stop.clone());
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while !stop2.load(Ordering::Relaxed) {
            if let Ok(n) = sink.recv(&mut buf)
                && buf[..n].starts_with(b"OPTIONS sip:")
            {
                count.fetch_add(1, Ordering::Relaxed);
            }
        }
    });
    let path = config(
        &dir,
        &account_toml("alice", "pw", &format!("127.0.0.1:{port}"), "udp", None),
    );
    let run = doctor(&path);
    stop.store(true, Ordering::Relaxed);
    reader.join().unwrap();
    run.expect_failed_at("reachability");
    assert_eq!(
        run.text("reachability", "evidence"),
        format!("udp 127.0.0.1:{port}: no answer within 3 s (packets dropped: filtered?)")
    );
    let advice = run.text("reachability", "advice");
    assert!(
        advice.starts_with(&format!("UDP {port} seems filtered (no answer at all)")),
        "{advice}"
    );
    assert!(
        advice.contains("try transport = \"tcp\" or \"tls\""),
        "{advice}"
    );
    // The OPTIONS was sent and retransmitted (500 ms, 1 s, ...), never answered.
    let sent = received.load(Ordering::Relaxed);
    assert!(sent >= 3, "OPTIONS datagrams received: {sent}");
    run.took(2900, 7, "");
}

// ---------------------------------------------------------------------------
// DNS

#[test]
fn invalid_name_does_not_resolve_with_spelling_advice() {
    let dir = TestDir::new("docnet-invalid");
    let path = config(
        &dir,
        &account_toml("alice", "pw", "pbx.no-such-host.invalid", "udp", None),
    );
    let run = doctor(&path);
    run.expect_failed_at("dns");
    let ev = run.text("dns", "evidence");
    assert!(ev.starts_with("pbx.no-such-host.invalid: "), "{ev}");
    assert!(ev.contains("no such host"), "{ev}");
    let advice = run.text("dns", "advice");
    assert!(
        advice.starts_with("The server name `pbx.no-such-host.invalid` does not resolve"),
        "{advice}"
    );
    assert!(advice.contains("check its spelling"), "{advice}");
    assert!(run.elapsed < Duration::from_secs(3), "{:?}", run.elapsed);
}

/// A DNS server of the test on `127.53.x.y:53` (as root only): answers
/// every query NXDOMAIN (`answer`), or reads and never answers.
struct FakeDns {
    ip: String,
    stop: Arc<AtomicBool>,
    queries: Arc<AtomicUsize>,
}

impl FakeDns {
    fn start(answer: bool) -> Option<FakeDns> {
        static SEQ: AtomicUsize = AtomicUsize::new(1);
        let n = SEQ.fetch_add(1, Ordering::Relaxed);
        let ip = format!("127.53.{}.{}", std::process::id() % 250 + 1, n);
        let sock = match UdpSocket::bind((ip.as_str(), 53)) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("SKIP: cannot bind a DNS server on {ip}:53 ({e}); needs root");
                return None;
            }
        };
        sock.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let queries = Arc::new(AtomicUsize::new(0));
        let (stop2, count) = (stop.clone(), queries.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 1500];
            while !stop2.load(Ordering::Relaxed) {
                let Ok((n, from)) = sock.recv_from(&mut buf) else {
                    continue;
                };
                count.fetch_add(1, Ordering::Relaxed);
                if answer && let Some(reply) = nxdomain(&buf[..n]) {
                    let _ = sock.send_to(&reply, from);
                }
            }
        });
        Some(FakeDns { ip, stop, queries })
    }
}

impl Drop for FakeDns {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The NXDOMAIN answer (RFC 1035 §4.1.1: QR, RD copied, RA, RCODE 3) to a
/// query: its header and question, no records.
fn nxdomain(query: &[u8]) -> Option<Vec<u8>> {
    let mut i = 12;
    loop {
        let len = usize::from(*query.get(i)?);
        i += 1 + len;
        if len == 0 {
            break;
        }
    }
    let end = i + 4;
    let mut reply = query.get(..end)?.to_vec();
    reply[2] = 0x80 | (query[2] & 0x01);
    reply[3] = 0x80 | 3;
    reply[4..6].copy_from_slice(&[0, 1]);
    reply[6..12].fill(0);
    Some(reply)
}

/// `unshare -m` + a bind mount: the doctor sees `resolv` as
/// /etc/resolv.conf, nothing else changes. None (skip) when mount
/// namespaces are not permitted here.
fn with_resolv_conf(dir: &TestDir, resolv_conf: &str) -> Option<Vec<String>> {
    with_namespaces(dir, resolv_conf, &["-m"])
}

/// [`with_resolv_conf`] with other `unshare` namespace flags (`-n`: a
/// network namespace with only a loopback that is down: no route at all).
fn with_namespaces(dir: &TestDir, resolv_conf: &str, flags: &[&str]) -> Option<Vec<String>> {
    let resolv = dir.file("resolv.conf");
    std::fs::write(&resolv, resolv_conf).unwrap();
    let probe = Command::new("unshare")
        .args(flags)
        .args(["--", "mount", "--bind"])
        .arg(&resolv)
        .arg("/etc/resolv.conf")
        .output();
    match probe {
        Ok(out) if out.status.success() => {}
        Ok(out) => {
            eprintln!(
                "SKIP: no namespaces here (unshare {flags:?}: {})",
                String::from_utf8_lossy(&out.stderr).trim()
            );
            return None;
        }
        Err(e) => {
            eprintln!("SKIP: unshare not available ({e})");
            return None;
        }
    }
    let script = format!(
        "mount --bind '{}' /etc/resolv.conf && exec \"$0\" \"$@\"",
        resolv.display()
    );
    let mut wrap: Vec<String> = vec!["unshare".into()];
    wrap.extend(flags.iter().map(|f| f.to_string()));
    wrap.extend(["--".into(), "sh".into(), "-c".into(), script]);
    Some(wrap)
}

#[test]
fn nxdomain_from_the_dns_server_says_the_name_does_not_resolve() {
    let Some(dns) = FakeDns::start(true) else {
        return;
    };
    let dir = TestDir::new("docnet-nxdomain");
    let Some(wrap) = with_resolv_conf(&dir, &format!("nameserver {}\n", dns.ip)) else {
        return;
    };
    let wrap: Vec<&str> = wrap.iter().map(String::as_str).collect();
    // No port: SRV _sip._udp, then A/AAAA — every one answered NXDOMAIN.
    let path = config(
        &dir,
        &account_toml("alice", "pw", "pbx.softline-test.example", "udp", None),
    );
    let run = doctor_with(&path, &wrap);
    run.expect_failed_at("dns");
    assert!(
        dns.queries.load(Ordering::Relaxed) >= 2,
        "the doctor asked our DNS server"
    );
    let ev = run.text("dns", "evidence");
    // After the DNS server's NXDOMAIN the system lookup (nsswitch) is
    // asked too; both say the name does not exist.
    assert!(
        ev.starts_with("pbx.softline-test.example: DNS lookup failed: "),
        "{ev}"
    );
    assert!(!ev.contains("no DNS answer"), "{ev}");
    assert!(!ev.contains("no answer from the DNS server"), "{ev}");
    let advice = run.text("dns", "advice");
    assert!(
        advice.starts_with("The server name `pbx.softline-test.example` does not resolve"),
        "{advice}"
    );
    assert!(run.elapsed < Duration::from_secs(5), "{:?}", run.elapsed);
}

#[test]
fn dns_server_that_never_answers_is_a_dns_failure_within_the_limit() {
    let Some(dns) = FakeDns::start(false) else {
        return;
    };
    let dir = TestDir::new("docnet-dns-silent");
    let Some(wrap) = with_resolv_conf(&dir, &format!("nameserver {}\n", dns.ip)) else {
        return;
    };
    let wrap: Vec<&str> = wrap.iter().map(String::as_str).collect();
    let path = config(
        &dir,
        &account_toml("alice", "pw", "pbx.softline-test.example", "tcp", None),
    );
    let run = doctor_with(&path, &wrap);
    run.expect_failed_at("dns");
    assert!(
        dns.queries.load(Ordering::Relaxed) >= 1,
        "the doctor asked our DNS server"
    );
    let ev = run.text("dns", "evidence");
    assert!(
        ev.starts_with("pbx.softline-test.example: no DNS answer within 10 s"),
        "{ev}"
    );
    let advice = run.text("dns", "advice");
    assert!(
        advice.starts_with("Your DNS server does not answer"),
        "{advice}"
    );
    // The DNS limit is 10 s.
    run.took(9500, 14, "");
}

#[test]
fn dns_server_that_never_answers_is_told_apart_when_the_resolver_gives_up_first() {
    let Some(dns) = FakeDns::start(false) else {
        return;
    };
    let dir = TestDir::new("docnet-dns-giveup");
    // A resolver set to give up after one 1 s try (a common resolv.conf
    // setting): it fails before the doctor's limit, and that is still "the
    // DNS server does not answer", not "the name does not exist".
    let Some(wrap) = with_resolv_conf(
        &dir,
        &format!("nameserver {}\noptions timeout:1 attempts:1\n", dns.ip),
    ) else {
        return;
    };
    let wrap: Vec<&str> = wrap.iter().map(String::as_str).collect();
    let path = config(
        &dir,
        &account_toml("alice", "pw", "pbx.softline-test.example:5060", "udp", None),
    );
    let run = doctor_with(&path, &wrap);
    run.expect_failed_at("dns");
    assert!(dns.queries.load(Ordering::Relaxed) >= 1);
    let ev = run.text("dns", "evidence");
    let advice = run.text("dns", "advice");
    assert!(
        ev.starts_with(
            "pbx.softline-test.example:5060: DNS lookup failed: pbx.softline-test.example: \
             no answer from the DNS server ("
        ),
        "{ev}"
    );
    assert!(
        advice.starts_with("Your DNS server does not answer"),
        "{ev}\n{advice}"
    );
    assert!(run.elapsed < Duration::from_secs(6), "{:?}", run.elapsed);
}

#[test]
fn tls_certificate_not_valid_yet_says_from_when_and_to_check_the_clock() {
    let dir = TestDir::new("docnet-notyet");
    let cert = make_cert(
        &dir.path,
        "IP:127.0.0.1",
        Some(("20900101000000Z", "20900201000000Z")),
    );
    let (run, _server) = tls_doctor(&dir, &cert, Some(&cert.ca_file));
    let (ev, advice) = tls_failure(&run, &cert);
    assert!(
        ev.contains("verification: server certificate is not valid yet"),
        "{ev}"
    );
    assert!(
        advice.starts_with(
            "Not valid yet: the certificate is valid only from 2090-01-01 00:00:00 UTC"
        ),
        "{advice}"
    );
    assert!(advice.contains("check this computer's date"), "{advice}");
}

#[test]
fn tls_port_that_accepts_but_never_handshakes_fails_within_the_limit() {
    let dir = TestDir::new("docnet-tls-silent");
    // TCP connects (reachability passes), then the server says nothing.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    let held = std::thread::spawn(move || {
        let mut conns = Vec::new();
        listener.set_nonblocking(true).unwrap();
        let until = Instant::now() + Duration::from_secs(20);
        while Instant::now() < until && !stop2.load(Ordering::Relaxed) {
            if let Ok((c, _)) = listener.accept() {
                conns.push(c);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        conns.len()
    });
    let path = config(
        &dir,
        &account_toml("alice", "pw", &format!("127.0.0.1:{port}"), "tls", None),
    );
    let run = doctor(&path);
    stop.store(true, Ordering::Relaxed);
    run.expect_failed_at("tls");
    let ev = run.text("tls", "evidence");
    assert_eq!(
        ev,
        format!("TLS handshake with 127.0.0.1:{port} (127.0.0.1): no answer (timeout)")
    );
    let advice = run.text("tls", "advice");
    assert!(
        advice.starts_with("The server does not complete a TLS handshake on this port"),
        "{advice}"
    );
    // The reachability connect is quick; the handshake waits its 5 s limit.
    run.took(4900, 9, "");
    assert!(held.join().unwrap() >= 2, "reachability and TLS connected");
}

#[test]
fn no_network_at_all_is_a_dns_server_failure_at_once() {
    let dir = TestDir::new("docnet-nonet");
    // A network namespace with no route: the DNS server (a documentation
    // address) cannot even be sent to.
    let Some(wrap) = with_namespaces(&dir, "nameserver 192.0.2.53\n", &["-m", "-n"]) else {
        return;
    };
    let wrap: Vec<&str> = wrap.iter().map(String::as_str).collect();
    let path = config(
        &dir,
        &account_toml("alice", "pw", "pbx.softline-test.example", "udp", None),
    );
    let run = doctor_with(&path, &wrap);
    run.expect_failed_at("dns");
    let ev = run.text("dns", "evidence");
    let advice = run.text("dns", "advice");
    assert!(
        ev.contains("no answer from the DNS server ("),
        "{ev}\n{advice}"
    );
    assert!(
        advice.starts_with("Your DNS server does not answer: check the network connection"),
        "{advice}"
    );
    assert!(run.elapsed < Duration::from_secs(5), "{:?}", run.elapsed);
}
