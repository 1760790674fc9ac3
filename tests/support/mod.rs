//! Shared fixtures for the integration tests: a real Kamailio registrar/proxy,
//! SIPp peers, a real baresip (`baresip.rs`) and the `softline` binary
//! driven over its control socket.
//!
//! Every fixture lives in its own directory under `std::env::temp_dir()`
//! (removed on success, kept and printed when the test panics) and kills
//! its processes on `Drop`. The waits here are waits for real processes,
//! so this module reads the clock and sleeps.
#![allow(dead_code)]
#![allow(clippy::disallowed_methods)]

pub mod baresip;
pub mod torture;

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const KAMAILIO: &str = "/usr/sbin/kamailio";
const KAMAILIO_MODULES: &str = "/usr/lib/x86_64-linux-gnu/kamailio/modules/";
const KAMCMD: &str = "/usr/sbin/kamcmd";
const SIPP: &str = "sipp";

// ---------------------------------------------------------------------------
// Temp dirs and ports

/// A unique directory for one fixture; removed on drop unless the thread is
/// panicking (then its path is printed so the logs can be read).
pub struct TestDir {
    pub path: PathBuf,
}

impl TestDir {
    pub fn new(label: &str) -> TestDir {
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let n = SEQ.fetch_add(1, Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("softline-it-{}-{n}-{label}", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).unwrap_or_else(|e| panic!("creating {}: {e}", path.display()));
        TestDir { path }
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Write `name` with unix mode `mode` (ignored elsewhere).
    pub fn write_mode(&self, name: &str, text: &str, mode: u32) -> PathBuf {
        let path = self.file(name);
        fs::write(&path, text).unwrap();
        set_mode(&path, mode);
        path
    }

    /// Write `name` readable by its owner only (0600): a config file that
    /// draws no "others can read your password" warning.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        self.write_mode(name, text, 0o600)
    }
}

/// Set a file's unix mode (nothing elsewhere).
pub fn set_mode(path: &Path, mode: u32) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
    }
    #[cfg(not(unix))]
    let _ = (path, mode);
}

impl Drop for TestDir {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("test files kept in {}", self.path.display());
        } else {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

/// Ports handed out by this process, so that parallel tests never pick the
/// same one between "bind 0, release" and the real owner binding it.
fn claim(port: u16) -> bool {
    static CLAIMED: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut claimed = CLAIMED.lock().unwrap_or_else(|e| e.into_inner());
    if claimed.contains(&port) {
        false
    } else {
        claimed.push(port);
        true
    }
}

fn udp_free(port: u16) -> bool {
    UdpSocket::bind(("127.0.0.1", port)).is_ok()
}

fn tcp_free(port: u16) -> bool {
    TcpListener::bind(("127.0.0.1", port)).is_ok()
}

/// Find `count` consecutive ports free for UDP (and for TCP when `tcp`),
/// starting at a port the OS gave us.
fn free_ports(count: u16, tcp: bool) -> u16 {
    for _ in 0..200 {
        let base = UdpSocket::bind("127.0.0.1:0")
            .and_then(|s| s.local_addr())
            .map(|a| a.port())
            .unwrap_or(0);
        if base == 0 || base > u16::MAX - count {
            continue;
        }
        let all_free = (base..base + count).all(|p| udp_free(p) && (!tcp || tcp_free(p)));
        if all_free && (base..base + count).all(claim) {
            return base;
        }
    }
    panic!("no free port block of {count}");
}

/// A port free for both UDP and TCP.
pub fn free_port() -> u16 {
    free_ports(1, true)
}

/// A UDP port (SIPp signalling, the phone's listener).
pub fn free_udp_port() -> u16 {
    free_ports(1, false)
}

/// `count` consecutive free UDP ports (an RTP port range); the first one.
pub fn free_udp_block(count: u16) -> u16 {
    free_ports(count, false)
}

/// Four consecutive UDP ports: SIPp binds its media port and the next three.
pub fn free_media_port() -> u16 {
    free_ports(4, false)
}

/// Poll `f` every 50 ms until it returns `Some` or `timeout` passes.
pub fn poll<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn read_lossy(path: &Path) -> String {
    fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Send SIGTERM to the process group led by `child`, then SIGKILL after
/// `grace`. Kamailio forks workers, so the group is what has to go.
fn stop_group(child: &mut Child, grace: Duration) {
    if matches!(child.try_wait(), Ok(Some(_))) {
        return;
    }
    let group = format!("-{}", child.id());
    let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
    if poll(grace, || child.try_wait().ok().flatten()).is_none() {
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// A SIP message's header block (lines joined by CRLF) with its
/// Content-Length (or compact `l`) header set to `body_len`, for the tests'
/// relays that rewrite an SDP body.
pub fn set_content_length(head: &str, body_len: usize) -> String {
    head.split("\r\n")
        .map(|h| {
            let name = h.split(':').next().unwrap_or("").trim();
            if name.eq_ignore_ascii_case("content-length") || name.eq_ignore_ascii_case("l") {
                format!("Content-Length: {body_len}")
            } else {
                h.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\r\n")
}

/// Send one SIP OPTIONS over UDP to `to` and return the first response line.
pub fn udp_options(to: SocketAddr, wait: Duration) -> Option<String> {
    let bind = if to.is_ipv6() {
        "[::1]:0"
    } else {
        "127.0.0.1:0"
    };
    let sock = UdpSocket::bind(bind).ok()?;
    let me = sock.local_addr().ok()?;
    let call_id = format!("probe-{}-{}", std::process::id(), me.port());
    let msg = format!(
        "OPTIONS sip:{to} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK{call_id};rport\r\n\
         Max-Forwards: 70\r\nFrom: <sip:probe@{me}>;tag=p1\r\nTo: <sip:{to}>\r\n\
         Call-ID: {call_id}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    );
    sock.set_read_timeout(Some(wait)).ok()?;
    sock.send_to(msg.as_bytes(), to).ok()?;
    let mut buf = vec![0u8; 65536];
    let (n, _) = sock.recv_from(&mut buf).ok()?;
    let text = String::from_utf8_lossy(buf.get(..n)?).into_owned();
    text.lines().next().map(str::to_owned)
}

// ---------------------------------------------------------------------------
// TLS material

/// A test CA and a server certificate for 127.0.0.1 / localhost signed by it.
pub struct TlsFiles {
    pub ca_file: PathBuf,
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
}

/// Run the `openssl` CLI in `dir`; panics with its stderr on failure.
pub fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("running openssl: {e}"));
    assert!(
        out.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The DER of the first PEM block labelled `label` (base64 decoded by hand).
pub fn pem_block(pem: &str, label: &str) -> Vec<u8> {
    let begin = format!("-----BEGIN {label}-----");
    let b64: String = pem
        .lines()
        .skip_while(|l| l.trim() != begin)
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .collect();
    assert!(!b64.is_empty(), "no {label} in {pem}");
    let table = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for c in b64.bytes().filter(|&c| c != b'=') {
        let v = table.iter().position(|&t| t == c).unwrap() as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

/// `SHA256:AB:CD:…` of a DER certificate, computed here independently.
pub fn sha256_fingerprint(der: &[u8]) -> String {
    use sha2::Digest;
    let hex: Vec<String> = sha2::Sha256::digest(der)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect();
    format!("SHA256:{}", hex.join(":"))
}

/// A CA valid for 2 days (`ca.pem`, `ca.key`, subject `ca_cn`) and a
/// server key with its signing request (`server.key`, `server.csr`, subject
/// `server_cn`) in `dir`, with the `openssl` CLI (EC P-256). Callers sign the
/// request their own way (`x509 -req`, or `ca` for explicit dates).
pub fn make_ca_and_server_csr(dir: &Path, ca_cn: &str, server_cn: &str) {
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let ca_subject = format!("/CN={ca_cn}");
    let mut ca = vec!["req", "-x509"];
    ca.extend(ec);
    ca.extend([
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        &ca_subject,
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    openssl(dir, &ca);
    let server_subject = format!("/CN={server_cn}");
    let mut csr = vec!["req"];
    csr.extend(ec);
    csr.extend([
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        &server_subject,
    ]);
    openssl(dir, &csr);
}

/// Generate the CA and server certificate with the `openssl` CLI (EC P-256).
pub fn make_tls_files(dir: &Path) -> TlsFiles {
    make_ca_and_server_csr(dir, "Softline Test CA", "127.0.0.1");
    fs::write(
        dir.join("server-ext.cnf"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n\
         basicConstraints=critical,CA:FALSE\n\
         keyUsage=critical,digitalSignature,keyEncipherment\n\
         extendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "2",
            "-extfile",
            "server-ext.cnf",
        ],
    );
    TlsFiles {
        ca_file: dir.join("ca.pem"),
        cert_file: dir.join("server.pem"),
        key_file: dir.join("server.key"),
    }
}

// ---------------------------------------------------------------------------
// Kamailio

/// What the registrar knows and where the test number goes.
pub struct KamailioOpts {
    /// (user, password): digest credentials accepted for REGISTER and for
    /// requests whose From user is one of them. Letters, digits, `-_.` only.
    pub users: Vec<(String, String)>,
    /// Requests for the user `echo` are relayed here (a SIPp UAS).
    pub echo_target: Option<SocketAddr>,
}

impl Default for KamailioOpts {
    fn default() -> Self {
        KamailioOpts {
            users: vec![
                ("alice".into(), "secret".into()),
                ("bob".into(), "hunter2".into()),
            ],
            echo_target: None,
        }
    }
}

/// A running Kamailio: registrar (usrloc in memory) and stateful proxy on
/// udp+tcp `127.0.0.1:port` and tls `127.0.0.1:tls_port`.
pub struct Kamailio {
    child: Child,
    pub port: u16,
    pub tls_port: u16,
    pub tls: TlsFiles,
    pub log: PathBuf,
    ctl: PathBuf,
    dir: TestDir,
}

/// Start `kamailio -DD -E` in its own process group, logging (appending)
/// to `log`.
fn spawn_kamailio(dir: &Path, cfg: &Path, log: &Path) -> Child {
    let log_file = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    Command::new(KAMAILIO)
        .args(["-DD", "-E", "-m", "64", "-M", "8", "-Y"])
        .arg(dir)
        .arg("-f")
        .arg(cfg)
        .stdin(Stdio::null())
        .stdout(log_file.try_clone().unwrap())
        .stderr(log_file)
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| panic!("starting {KAMAILIO}: {e}"))
}

fn check_token(s: &str) {
    assert!(
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)),
        "fixture user/password {s:?} must be letters, digits, '-', '_' or '.'"
    );
}

fn kamailio_cfg(opts: &KamailioOpts, port: u16, tls_port: u16, dir: &Path) -> String {
    let mut passwords = String::new();
    let mut from_local = Vec::new();
    for (user, password) in &opts.users {
        check_token(user);
        check_token(password);
        passwords.push_str(&format!(
            "\tif ($au == \"{user}\") {{\n\t\t$var(pw) = \"{password}\";\n\t}}\n"
        ));
        from_local.push(format!("$fU == \"{user}\""));
    }
    let from_local = if from_local.is_empty() {
        "0".to_owned()
    } else {
        from_local.join(" || ")
    };
    let echo = match opts.echo_target {
        Some(addr) => format!(
            "\tif ($rU == \"echo\") {{\n\t\t$du = \"sip:{addr}\";\n\t\troute(RELAY);\n\t\texit;\n\t}}\n"
        ),
        None => String::new(),
    };
    let dir = dir.display();
    format!(
        r#"#!KAMAILIO
# Generated by Softline's integration tests: registrar + proxy, no database.
debug=2
log_stderror=yes
log_prefix="{{$mt $hdr(CSeq) $ci}} "
children=2
tcp_children=2
auto_aliases=no
dns=no
rev_dns=no
use_dns_cache=no
alias="localhost:{port}"
alias="localhost:{tls_port}"
listen=udp:127.0.0.1:{port}
listen=tcp:127.0.0.1:{port}
listen=tls:127.0.0.1:{tls_port}
enable_tls=yes
tcp_connection_lifetime=3605
mpath="{KAMAILIO_MODULES}"

loadmodule "kex.so"
loadmodule "corex.so"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "textops.so"
loadmodule "siputils.so"
loadmodule "xlog.so"
loadmodule "sanity.so"
loadmodule "ctl.so"
loadmodule "auth.so"
loadmodule "usrloc.so"
loadmodule "registrar.so"
loadmodule "nathelper.so"
loadmodule "tls.so"

modparam("ctl", "binrpc", "unix:{dir}/kamailio_ctl")
modparam("usrloc", "db_mode", 0)
modparam("registrar", "min_expires", 10)
modparam("registrar", "max_expires", 3600)
modparam("registrar", "received_avp", "$avp(RECEIVED)")
modparam("nathelper", "received_avp", "$avp(RECEIVED)")
modparam("tls", "config", "{dir}/tls.cfg")
modparam("rr", "enable_full_lr", 1)

request_route {{
	xlog("L_NOTICE", "SLTEST REQ $rm $ru from $si:$sp/$pr fu=$fu au=$au\n");
	if (!mf_process_maxfwd_header("10")) {{
		sl_send_reply("483", "Too Many Hops");
		exit;
	}}
	if (!sanity_check("17895", "7")) {{
		xlog("L_WARN", "SLTEST malformed request from $si:$sp\n");
		exit;
	}}
	force_rport();
	if ($pr != "udp") {{
		# TCP/TLS clients are reached over their own connection.
		if (is_method("REGISTER")) {{
			fix_nated_register();
		}} else if (!has_totag()) {{
			add_contact_alias();
		}}
	}}
	if (has_totag()) {{
		if (loose_route()) {{
			handle_ruri_alias();
			route(RELAY);
			exit;
		}}
		if (is_method("ACK")) {{
			if (t_check_trans()) {{
				t_relay();
			}}
			exit;
		}}
		sl_send_reply("404", "Not here");
		exit;
	}}
	if (is_method("CANCEL")) {{
		if (t_check_trans()) {{
			route(RELAY);
		}}
		exit;
	}}
	if (is_method("ACK")) {{
		if (t_check_trans()) {{
			t_relay();
		}}
		exit;
	}}
	t_check_trans();
	if (is_method("REGISTER")) {{
		route(REGISTRAR);
		exit;
	}}
	if (is_method("OPTIONS") && uri == myself && $rU == $null) {{
		sl_send_reply("200", "Keepalive");
		exit;
	}}
	route(AUTH);
	remove_hf("Route");
	record_route();
{echo}	if (!lookup("location")) {{
		sl_send_reply("404", "Not Found");
		exit;
	}}
	route(RELAY);
}}

route[PASSWORD] {{
	$var(pw) = $null;
{passwords}}}

route[REGISTRAR] {{
	route(PASSWORD);
	if ($var(pw) == $null || !pv_www_authenticate("$td", "$var(pw)", "0")) {{
		xlog("L_NOTICE", "SLTEST REGISTER challenge au=$au\n");
		www_challenge("$td", "0");
		exit;
	}}
	if ($au != $tU) {{
		sl_send_reply("403", "Forbidden auth ID");
		exit;
	}}
	consume_credentials();
	if (!save("location")) {{
		sl_reply_error();
	}}
	exit;
}}

# Requests from a local user must authenticate; anyone else (the SIPp peers)
# is trusted like a trunk.
route[AUTH] {{
	if ({from_local}) {{
		route(PASSWORD);
		if ($var(pw) == $null || !pv_proxy_authenticate("$fd", "$var(pw)", "0")) {{
			proxy_challenge("$fd", "0");
			exit;
		}}
		consume_credentials();
	}}
}}

route[RELAY] {{
	if (is_method("INVITE")) {{
		t_on_reply("REPLY");
	}}
	if (!t_relay()) {{
		sl_reply_error();
	}}
	exit;
}}

onreply_route[REPLY] {{
	if ($pr != "udp" && status =~ "[12][0-9][0-9]") {{
		add_contact_alias();
	}}
}}
"#
    )
}

impl Kamailio {
    /// Write the config and TLS files, start Kamailio in the foreground and
    /// wait until it answers OPTIONS over UDP and accepts TCP and TLS
    /// connections. Panics with the log when it does not come up.
    pub fn start(opts: KamailioOpts) -> Kamailio {
        let dir = TestDir::new("kamailio");
        let tls = make_tls_files(&dir.path);
        let port = free_ports(2, true);
        let tls_port = port + 1;
        fs::write(
            dir.file("tls.cfg"),
            format!(
                "[server:default]\nmethod = TLSv1.2+\nverify_certificate = no\nrequire_certificate = no\n\
                 private_key = {}\ncertificate = {}\n\n\
                 [client:default]\nmethod = TLSv1.2+\nverify_certificate = no\nrequire_certificate = no\n",
                tls.key_file.display(),
                tls.cert_file.display()
            ),
        )
        .unwrap();
        let cfg = dir.file("kamailio.cfg");
        fs::write(&cfg, kamailio_cfg(&opts, port, tls_port, &dir.path)).unwrap();
        let log = dir.file("kamailio.log");
        let child = spawn_kamailio(&dir.path, &cfg, &log);
        let mut k = Kamailio {
            child,
            port,
            tls_port,
            tls,
            log,
            ctl: dir.file("kamailio_ctl"),
            dir,
        };
        k.wait_ready();
        k
    }

    /// Stop Kamailio (SIGTERM, then SIGKILL) and wait until it is gone.
    pub fn stop(&mut self) {
        stop_group(&mut self.child, Duration::from_secs(3));
    }

    /// Start the stopped Kamailio again with the same config and ports
    /// (its in-memory bindings are gone) and wait until it is ready.
    pub fn restart(&mut self) {
        let cfg = self.dir.file("kamailio.cfg");
        self.child = spawn_kamailio(&self.dir.path, &cfg, &self.log);
        self.wait_ready();
    }

    fn wait_ready(&mut self) {
        let port = self.port;
        let tls_port = self.tls_port;
        let udp: SocketAddr = ([127, 0, 0, 1], port).into();
        let ready = poll(Duration::from_secs(15), || {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "kamailio exited at start ({status}):\n{}",
                    tail(&self.log_text(), 40)
                );
            }
            let tcp = TcpStream::connect(("127.0.0.1", port)).is_ok()
                && TcpStream::connect(("127.0.0.1", tls_port)).is_ok();
            let options =
                udp_options(udp, Duration::from_millis(200)).is_some_and(|l| l.contains(" 200 "));
            (tcp && options).then_some(())
        });
        if ready.is_none() {
            panic!(
                "kamailio did not come up on port {port}:\n{}",
                tail(&self.log_text(), 40)
            );
        }
    }

    /// `127.0.0.1:port`: the domain (and UDP/TCP registrar) for accounts.
    pub fn domain(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `127.0.0.1:tls_port`: the TLS registrar.
    pub fn tls_domain(&self) -> String {
        format!("127.0.0.1:{}", self.tls_port)
    }

    pub fn addr(&self) -> SocketAddr {
        ([127, 0, 0, 1], self.port).into()
    }

    pub fn log_text(&self) -> String {
        read_lossy(&self.log)
    }

    /// How many `method` requests from the user `from_user` reached the
    /// script (each one is logged once on arrival, retransmissions too).
    pub fn count_requests(&self, method: &str, from_user: &str) -> usize {
        let needle = format!("SLTEST REQ {method} ");
        let from = format!("fu=sip:{from_user}@");
        self.log_text()
            .lines()
            .filter(|l| l.contains(&needle) && l.contains(&from))
            .count()
    }

    /// `kamcmd ul.dump` output (the in-memory location table).
    pub fn ul_dump(&self) -> String {
        let out = Command::new(KAMCMD)
            .arg("-s")
            .arg(format!("unix:{}", self.ctl.display()))
            .arg("ul.dump")
            .output()
            .unwrap_or_else(|e| panic!("running {KAMCMD}: {e}"));
        assert!(
            out.status.success(),
            "kamcmd ul.dump failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The contact addresses bound to `user`.
    pub fn bindings(&self, user: &str) -> Vec<String> {
        let dump = self.ul_dump();
        let mut out = Vec::new();
        let mut in_aor = false;
        for line in dump.lines() {
            let line = line.trim();
            if let Some(aor) = line.strip_prefix("AoR: ") {
                in_aor = aor == user;
            } else if in_aor && let Some(addr) = line.strip_prefix("Address: ") {
                out.push(addr.to_owned());
            }
        }
        out
    }
}

impl Drop for Kamailio {
    fn drop(&mut self) {
        stop_group(&mut self.child, Duration::from_secs(3));
        if std::thread::panicking() {
            eprintln!(
                "--- kamailio log (tail) ---\n{}",
                tail(&self.log_text(), 60)
            );
        }
    }
}

// ---------------------------------------------------------------------------
// SIPp

/// Path of a scenario in tests/sipp.
pub fn scenario(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/sipp")
        .join(name)
}

/// One SIPp process (one call: `-m 1`), killed on drop.
pub struct Sipp {
    child: Child,
    status: Option<ExitStatus>,
    pub port: u16,
    dir: TestDir,
    label: String,
}

impl Sipp {
    fn spawn(
        scenario_name: &str,
        transport: &str,
        remote: Option<SocketAddr>,
        extra: &[&str],
    ) -> Sipp {
        let label = scenario_name.trim_end_matches(".xml").to_owned();
        let dir = TestDir::new(&format!("sipp-{label}"));
        let port = if transport == "u1" {
            free_udp_port()
        } else {
            free_port()
        };
        let media = free_media_port();
        let mut cmd = Command::new(SIPP);
        cmd.arg("-sf")
            .arg(scenario(scenario_name))
            .args(["-nostdin", "-m", "1", "-t", transport, "-i", "127.0.0.1"])
            .args(["-p", &port.to_string(), "-mp", &media.to_string()])
            .args(["-trace_err", "-error_file"])
            .arg(dir.file("errors.log"))
            .args(["-trace_msg", "-message_file"])
            .arg(dir.file("messages.log"))
            .arg("-log_file")
            .arg(dir.file("logs.log"))
            .args(extra);
        if let Some(remote) = remote {
            cmd.arg(remote.to_string());
        }
        let stdout = fs::File::create(dir.file("screen.log")).unwrap();
        let stderr = fs::File::create(dir.file("stderr.log")).unwrap();
        let child = cmd
            .current_dir(&dir.path)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {SIPP}: {e}"));
        Sipp {
            child,
            status: None,
            port,
            dir,
            label,
        }
    }

    /// A UAS (e.g. `uas_answer.xml`) over UDP on a free port; returns once
    /// SIPp holds the port.
    pub fn uas(scenario_name: &str) -> Sipp {
        Sipp::uas_with(scenario_name, &[])
    }

    /// [`Sipp::uas`] with extra arguments, e.g. `["-rtp_echo"]` or
    /// `["-trace_logs"]` (the scenario's `<log>` lines then go to
    /// [`Sipp::log_text`]).
    pub fn uas_with(scenario_name: &str, extra: &[&str]) -> Sipp {
        let mut s = Sipp::spawn(scenario_name, "u1", None, extra);
        let port = s.port;
        let bound = poll(Duration::from_secs(5), || {
            if let Ok(Some(status)) = s.child.try_wait() {
                s.status = Some(status);
                return Some(false);
            }
            (!udp_free(port)).then_some(true)
        });
        if bound != Some(true) {
            panic!("sipp {} did not start:\n{}", s.label, s.logs());
        }
        s
    }

    /// A client scenario against `remote`, running in the background.
    /// `extra` e.g. `["-s", "bob"]`, `["-au", "alice", "-ap", "pw"]`.
    pub fn client(
        scenario_name: &str,
        transport: &str,
        remote: SocketAddr,
        extra: &[&str],
    ) -> Sipp {
        Sipp::spawn(scenario_name, transport, Some(remote), extra)
    }

    /// Run a client scenario to completion (at most `timeout`) and return
    /// its exit status; panics with the logs when it does not finish.
    pub fn run_client(
        scenario_name: &str,
        transport: &str,
        remote: SocketAddr,
        extra: &[&str],
        timeout: Duration,
    ) -> (ExitStatus, String) {
        let mut s = Sipp::client(scenario_name, transport, remote, extra);
        match s.wait(timeout) {
            Some(status) => (status, s.logs()),
            None => panic!(
                "sipp {} did not finish in {timeout:?}:\n{}",
                s.label,
                s.logs()
            ),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        ([127, 0, 0, 1], self.port).into()
    }

    /// Wait for the process to exit (SIPp exits 0 when its call succeeded).
    pub fn wait(&mut self, timeout: Duration) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = poll(timeout, || self.child.try_wait().ok().flatten());
        }
        self.status
    }

    /// What the scenario's `<log>` actions wrote (run with `-trace_logs`).
    pub fn log_text(&self) -> String {
        read_lossy(&self.dir.file("logs.log"))
    }

    /// The error log, stderr and the tail of the message trace.
    pub fn logs(&self) -> String {
        format!(
            "--- sipp {} stderr ---\n{}\n--- errors ---\n{}\n--- messages (tail) ---\n{}",
            self.label,
            read_lossy(&self.dir.file("stderr.log")),
            read_lossy(&self.dir.file("errors.log")),
            tail(&read_lossy(&self.dir.file("messages.log")), 80)
        )
    }
}

impl Drop for Sipp {
    fn drop(&mut self) {
        if self.status.is_none() {
            stop_group(&mut self.child, Duration::from_millis(500));
        }
        if std::thread::panicking() {
            eprintln!("{}", self.logs());
        }
    }
}

/// Every sample written to a (growing) mono 16-bit WAV file so far, read
/// from the raw bytes after the 44-byte header (the header's length field
/// lags behind the data while the file grows).
pub fn growing_wav_samples(path: &Path) -> Vec<i16> {
    let bytes = fs::read(path).unwrap_or_default();
    bytes
        .get(44..)
        .unwrap_or_default()
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect()
}

// ---------------------------------------------------------------------------
// The phone

/// `softline --headless` with a config file and a control socket in its
/// own directory. The config text may say `{dir}` for that directory.
pub struct Phone {
    child: Child,
    pub socket: PathBuf,
    pub stderr: PathBuf,
    pub dir: TestDir,
}

impl Phone {
    pub fn start(config_toml: &str) -> Phone {
        Phone::start_with_env(config_toml, &[])
    }

    /// As [`Phone::start`], with extra environment (e.g. `PULSE_SERVER`).
    pub fn start_with_env(config_toml: &str, env: &[(&str, String)]) -> Phone {
        let dir = TestDir::new("phone");
        let config = dir.file("softline.toml");
        fs::write(
            &config,
            config_toml.replace("{dir}", &dir.path.display().to_string()),
        )
        .unwrap();
        let socket = dir.file("ctl.sock");
        let stderr = dir.file("stderr.log");
        let child = Command::new(env!("CARGO_BIN_EXE_softline"))
            .arg("--headless")
            .arg("--config")
            .arg(&config)
            .arg("--ctl-socket")
            .arg(&socket)
            .env("RUST_LOG", "debug")
            .env("XDG_RUNTIME_DIR", &dir.path)
            .env("XDG_STATE_HOME", &dir.path)
            .env("XDG_CONFIG_HOME", &dir.path)
            // Never the machine's /etc/softline/softline.toml.
            .env("SOFTLINE_SYSTEM_CONFIG", dir.file("no-system.toml"))
            .env_remove("SOFTLINE_PROFILE")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(fs::File::create(dir.file("stdout.log")).unwrap())
            .stderr(fs::File::create(&stderr).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("starting softline: {e}"));
        let mut phone = Phone {
            child,
            socket,
            stderr,
            dir,
        };
        let up = poll(Duration::from_secs(10), || {
            if let Ok(Some(status)) = phone.child.try_wait() {
                panic!(
                    "softline exited at start ({status}):\n{}",
                    phone.stderr_text()
                );
            }
            phone.try_ctl(&json!({"cmd": "status"})).ok()
        });
        if up.is_none() {
            panic!(
                "softline's control socket {} did not answer:\n{}",
                phone.socket.display(),
                phone.stderr_text()
            );
        }
        phone
    }

    pub fn stderr_text(&self) -> String {
        read_lossy(&self.stderr)
    }

    /// The shared libraries mapped into the running phone (`/proc/PID/maps`).
    #[cfg(target_os = "linux")]
    pub fn mapped_libraries(&self) -> String {
        fs::read_to_string(format!("/proc/{}/maps", self.child.id())).unwrap_or_default()
    }

    /// The SIP trace, when the config enabled it with `dir = "{dir}"`.
    pub fn trace_text(&self) -> String {
        read_lossy(&self.dir.file("sip-trace.log"))
    }

    /// One request over a fresh connection; the whole reply object.
    pub fn try_ctl(&self, request: &Value) -> Result<Value, String> {
        let stream = std::os::unix::net::UnixStream::connect(&self.socket)
            .map_err(|e| format!("connect {}: {e}", self.socket.display()))?;
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .map_err(|e| e.to_string())?;
        let mut writer = stream.try_clone().map_err(|e| e.to_string())?;
        writer
            .write_all(format!("{request}\n").as_bytes())
            .map_err(|e| format!("write: {e}"))?;
        let mut line = String::new();
        BufReader::new(stream)
            .read_line(&mut line)
            .map_err(|e| format!("read: {e}"))?;
        serde_json::from_str(&line).map_err(|e| format!("bad reply {line:?}: {e}"))
    }

    /// Send a control request, return the reply (`{"ok":…,"result"|"error":…}`).
    pub fn ctl(&self, request: Value) -> Value {
        self.try_ctl(&request)
            .unwrap_or_else(|e| panic!("ctl {request}: {e}\n{}", tail(&self.stderr_text(), 40)))
    }

    /// Send a control request that must succeed; its `result`.
    /// `softline ctl events` of this phone: the client process (kill it
    /// when done) and one parsed object per line.
    pub fn events(&self) -> (Child, std::sync::mpsc::Receiver<Value>) {
        let mut child = Command::new(env!("CARGO_BIN_EXE_softline"))
            .args(["ctl", "--socket", self.socket.to_str().unwrap(), "events"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str::<Value>(&line)
                    && tx.send(v).is_err()
                {
                    break;
                }
            }
        });
        (child, rx)
    }

    pub fn cmd(&self, request: Value) -> Value {
        let reply = self.ctl(request.clone());
        assert_eq!(reply["ok"], json!(true), "ctl {request} failed: {reply}");
        reply["result"].clone()
    }

    pub fn status(&self) -> Value {
        self.cmd(json!({"cmd": "status"}))
    }

    /// Poll the status every 50 ms until `pred` holds; the last status in
    /// the error otherwise.
    pub fn wait_for(
        &self,
        pred: impl Fn(&Value) -> bool,
        timeout: Duration,
    ) -> Result<Value, String> {
        let mut last = Value::Null;
        let got = poll(timeout, || {
            let status = self
                .try_ctl(&json!({"cmd": "status"}))
                .ok()?
                .get("result")?
                .clone();
            if pred(&status) {
                Some(status)
            } else {
                last = status;
                None
            }
        });
        got.ok_or_else(|| {
            format!(
                "condition not met in {timeout:?}; last status: {last:#}\n--- phone stderr (tail) ---\n{}",
                tail(&self.stderr_text(), 40)
            )
        })
    }
}

impl Drop for Phone {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.try_ctl(&json!({"cmd": "shutdown"}));
            if poll(Duration::from_secs(2), || {
                self.child.try_wait().ok().flatten()
            })
            .is_none()
            {
                let _ = self.child.kill();
                let _ = self.child.wait();
            }
        }
        if std::thread::panicking() {
            eprintln!(
                "--- softline stderr (tail) ---\n{}",
                tail(&self.stderr_text(), 60)
            );
        }
    }
}

/// A headless `softline` started from `cmd` (the binary with the test's
/// own environment: system file, profile) with `dir` as its XDG runtime,
/// state and data home, `--config CONFIG`, its control socket at
/// `dir/ctl.sock` and stderr in `dir/stderr.log`. Returns once the control
/// socket answers; panics with the phone's stderr if it exits first.
#[cfg(unix)]
pub fn spawn_headless(dir: &TestDir, mut cmd: Command, config: &Path) -> (Child, PathBuf, PathBuf) {
    let socket = dir.file("ctl.sock");
    let stderr = dir.file("stderr.log");
    let mut child = cmd
        .env("XDG_RUNTIME_DIR", &dir.path)
        .env("XDG_STATE_HOME", &dir.path)
        .env("XDG_DATA_HOME", &dir.path)
        .arg("--headless")
        .arg("--config")
        .arg(config)
        .arg("--ctl-socket")
        .arg(&socket)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&stderr).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    while std::os::unix::net::UnixStream::connect(&socket).is_err() {
        if let Ok(Some(exit)) = child.try_wait() {
            panic!(
                "softline exited ({exit}):\n{}",
                std::fs::read_to_string(&stderr).unwrap_or_default()
            );
        }
        assert!(Instant::now() < deadline, "no control socket");
        std::thread::sleep(Duration::from_millis(100));
    }
    (child, socket, stderr)
}

/// TOML for a phone listening on UDP `listen_port` with the given
/// `[[account]]` tables (already formatted), no audio devices, and the SIP
/// trace written into the phone's directory.
pub fn phone_config(listen_port: u16, accounts: &[String]) -> String {
    let mut toml = format!(
        "[sip]\nlisten_udp = \"127.0.0.1:{listen_port}\"\n\n\
         [audio]\ninput = \"null\"\noutput = \"null\"\n\n\
         [trace]\nenabled = true\ndir = \"{{dir}}\"\n"
    );
    for account in accounts {
        toml.push('\n');
        toml.push_str(account);
    }
    toml
}

/// One `[[account]]` table. `transport` is `udp`, `tcp` or `tls`.
pub fn account_toml(
    user: &str,
    password: &str,
    domain: &str,
    transport: &str,
    tls_ca_file: Option<&Path>,
) -> String {
    let mut t = format!(
        "[[account]]\nid = \"a\"\nusername = \"{user}\"\npassword = \"{password}\"\n\
         domain = \"{domain}\"\ntransport = \"{transport}\"\nexpires = 60\nregister = true\n"
    );
    if let Some(ca) = tls_ca_file {
        t.push_str(&format!("tls_ca_file = \"{}\"\n", ca.display()));
    }
    t
}

/// `status.accounts[0]` (Null when absent).
pub fn account0(status: &Value) -> &Value {
    &status["accounts"][0]
}

/// `status.calls[0]` (Null when absent).
pub fn call0(status: &Value) -> &Value {
    &status["calls"][0]
}
