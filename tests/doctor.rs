//! `softline doctor` against real servers: a Kamailio registrar (UDP, TCP,
//! TLS with the test CA), a port with nothing listening, and a tiny UDP
//! registrar in the test that answers 404. Each check is proven against the
//! failure it claims to detect; the bundle test proves no secret leaks.
#![cfg(unix)]
#![allow(clippy::disallowed_methods)]

mod support;

use std::net::UdpSocket;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use support::{
    Kamailio, KamailioOpts, TestDir, account_toml, free_port, pem_block, sha256_fingerprint,
};

/// A password distinctive enough to be searched for in the bundle bytes.
const ALICE_PW: &str = "Xk9_dOcToR.pw";

fn kamailio() -> Kamailio {
    Kamailio::start(KamailioOpts {
        users: vec![
            ("alice".into(), ALICE_PW.into()),
            ("bob".into(), "hunter2".into()),
        ],
        echo_target: None,
    })
}

/// Write a config with `account` (an `[[account]]` table) and `extra` TOML.
fn config(dir: &TestDir, account: &str, extra: &str) -> std::path::PathBuf {
    let path = dir.file("softline.toml");
    let text = format!(
        "[sip]\nlisten_udp = \"127.0.0.1:0\"\nudp_keepalive_secs = 25\n\n[audio]\ninput = \"null\"\noutput = \"null\"\n{extra}\n{account}"
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// Run `softline doctor --config PATH --json [args]`: (exit ok, report, stdout).
fn doctor(path: &Path, args: &[&str]) -> (bool, Vec<Value>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_softline"))
        .arg("--config")
        .arg(path)
        .arg("doctor")
        .arg("--json")
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let report: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let checks = report.as_array().cloned().unwrap_or_default();
    (out.status.success(), checks, stdout)
}

fn check<'a>(checks: &'a [Value], name: &str) -> &'a Value {
    checks
        .iter()
        .find(|c| c["check"] == name)
        .unwrap_or_else(|| panic!("no check {name} in {checks:?}"))
}

fn statuses(checks: &[Value]) -> Vec<(String, String)> {
    checks
        .iter()
        .map(|c| {
            (
                c["check"].as_str().unwrap_or("").to_string(),
                c["status"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

fn expect(checks: &[Value], want: &[(&str, &str)]) {
    let got = statuses(checks);
    let want: Vec<(String, String)> = want
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    assert_eq!(
        got,
        want,
        "{}",
        serde_json::to_string_pretty(checks).unwrap()
    );
}

#[test]
fn good_account_passes_over_udp_and_tls_and_leaves_no_binding() {
    let k = kamailio();
    let dir = TestDir::new("doctor-good");
    let path = config(
        &dir,
        &account_toml("alice", ALICE_PW, &k.domain(), "udp", None),
        "",
    );
    let (ok, checks, stdout) = doctor(&path, &[]);
    expect(
        &checks,
        &[
            ("config", "passed"),
            ("dns", "passed"),
            ("reachability", "passed"),
            ("tls", "skipped"),
            ("options", "passed"),
            ("register", "passed"),
            ("nat", "passed"),
            ("microphone", "skipped"),
            ("media", "passed"),
        ],
    );
    assert!(ok, "exit code 0 when every check passed");
    let reach = check(&checks, "reachability")["evidence"].as_str().unwrap();
    assert!(
        reach.contains(&format!("udp {}: OPTIONS answered 200", k.addr())),
        "{reach}"
    );
    let options = check(&checks, "options")["evidence"].as_str().unwrap();
    assert!(options.contains(": 200 Keepalive in "), "{options}");
    let reg = check(&checks, "register")["evidence"].as_str().unwrap();
    assert!(reg.contains("<- 401 Unauthorized"), "{reg}");
    assert!(reg.contains("-> REGISTER with credentials"), "{reg}");
    assert!(reg.contains("<- 200 OK"), "{reg}");
    assert!(reg.contains("(Expires: 0, removing the binding)"), "{reg}");
    assert!(reg.contains("binding removed again"), "{reg}");
    let nat = check(&checks, "nat")["evidence"].as_str().unwrap();
    assert!(nat.contains("the server saw us at 127.0.0.1 port"), "{nat}");
    assert!(nat.contains("keep-alives not needed"), "{nat}");
    assert!(!stdout.contains(ALICE_PW), "the password is never printed");
    assert!(
        k.bindings("alice").is_empty(),
        "binding left: {:?}",
        k.bindings("alice")
    );

    // TLS with the test CA: the certificate is described and trusted.
    let path = config(
        &dir,
        &account_toml(
            "alice",
            ALICE_PW,
            &k.tls_domain(),
            "tls",
            Some(&k.tls.ca_file),
        ),
        "",
    );
    let (ok, checks, _) = doctor(&path, &[]);
    let tls = check(&checks, "tls");
    assert_eq!(tls["status"], "passed", "{tls}");
    let ev = tls["evidence"].as_str().unwrap();
    assert!(ev.contains("subject: CN=127.0.0.1"), "{ev}");
    assert!(ev.contains("names: localhost, IP 127.0.0.1"), "{ev}");
    assert!(ev.contains("issuer: CN=Softline Test CA\n"), "{ev}");
    assert!(ev.contains("valid: 20"), "{ev}");
    assert!(ev.contains("verification: trusted for 127.0.0.1"), "{ev}");
    assert!(ok, "{}", serde_json::to_string_pretty(&checks).unwrap());
    assert!(k.bindings("alice").is_empty());
}

#[test]
fn wrong_password_fails_at_register_with_password_advice() {
    let k = kamailio();
    let dir = TestDir::new("doctor-badpw");
    let path = config(
        &dir,
        &account_toml("alice", "wrong-one", &k.domain(), "udp", None),
        "",
    );
    let (ok, checks, stdout) = doctor(&path, &[]);
    assert!(!ok);
    expect(
        &checks,
        &[
            ("config", "passed"),
            ("dns", "passed"),
            ("reachability", "passed"),
            ("tls", "skipped"),
            ("options", "passed"),
            ("register", "failed"),
            ("nat", "skipped"),
            ("microphone", "skipped"),
            ("media", "skipped"),
        ],
    );
    let reg = check(&checks, "register");
    let advice = reg["advice"].as_str().unwrap();
    assert!(advice.starts_with("Password rejected"), "{advice}");
    assert!(advice.contains("auth user `alice`"), "{advice}");
    let ev = reg["evidence"].as_str().unwrap();
    assert_eq!(
        ev.matches("<- 401 Unauthorized").count(),
        2,
        "one retry, no loop: {ev}"
    );
    assert!(
        !stdout.contains("wrong-one"),
        "the password is never printed"
    );
    assert_eq!(
        check(&checks, "nat")["evidence"],
        "not run: an earlier check failed"
    );

    // Human output: one line per check, ASCII marks, the advice.
    let out = Command::new(env!("CARGO_BIN_EXE_softline"))
        .arg("--config")
        .arg(&path)
        .arg("doctor")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("[ok]   config"), "{text}");
    assert!(text.contains("[FAIL] register"), "{text}");
    assert!(text.contains("-> Password rejected"), "{text}");
    assert!(text.contains("[skip] nat"), "{text}");
}

#[test]
fn wrong_auth_user_is_403_and_unknown_extension_is_404() {
    let k = kamailio();
    let dir = TestDir::new("doctor-403");
    // Kamailio answers 403 when the digest user is not the extension.
    let mut account = account_toml("carol", ALICE_PW, &k.domain(), "tcp", None);
    account.push_str("auth_username = \"alice\"\n");
    let path = config(&dir, &account, "");
    let (ok, checks, _) = doctor(&path, &[]);
    assert!(!ok);
    let reg = check(&checks, "register");
    assert_eq!(reg["status"], "failed", "{reg}");
    let advice = reg["advice"].as_str().unwrap();
    assert!(
        advice.contains("refuses this account (403 Forbidden auth ID)"),
        "{advice}"
    );
    assert!(
        advice.contains("check username and auth_username"),
        "{advice}"
    );
    let reach = check(&checks, "reachability")["evidence"].as_str().unwrap();
    assert!(reach.contains("TCP connected in"), "{reach}");

    // A registrar that does not know the extension: 404 to REGISTER.
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = sock.local_addr().unwrap();
    let server = std::thread::spawn(move || registrar_404(sock));
    let path = config(
        &dir,
        &account_toml("7777", "pw-7777", &addr.to_string(), "udp", None),
        "",
    );
    let (ok, checks, _) = doctor(&path, &[]);
    drop(server);
    assert!(!ok);
    let reg = check(&checks, "register");
    assert_eq!(reg["status"], "failed", "{checks:?}");
    let advice = reg["advice"].as_str().unwrap();
    assert!(
        advice.contains(&format!(
            "does not know extension `7777` at {addr} (404 Not Found)"
        )),
        "{advice}"
    );
}

/// Answer OPTIONS 200 and REGISTER 404 (for 10 s).
fn registrar_404(sock: UdpSocket) {
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let start = std::time::Instant::now();
    let mut buf = vec![0u8; 65536];
    while start.elapsed() < Duration::from_secs(10) {
        let Ok((n, from)) = sock.recv_from(&mut buf) else {
            continue;
        };
        let text = String::from_utf8_lossy(&buf[..n]).into_owned();
        let Some(first) = text.lines().next() else {
            continue;
        };
        let code = if first.starts_with("OPTIONS") {
            "200 OK"
        } else if first.starts_with("REGISTER") {
            "404 Not Found"
        } else {
            continue;
        };
        let mut reply = format!("SIP/2.0 {code}\r\n");
        for line in text.lines() {
            let lower = line.to_ascii_lowercase();
            if ["via:", "from:", "call-id:", "cseq:"]
                .iter()
                .any(|h| lower.starts_with(h))
            {
                let line = if lower.starts_with("via:") {
                    line.replace(
                        ";rport",
                        &format!(";received={};rport={}", from.ip(), from.port()),
                    )
                } else {
                    line.to_string()
                };
                reply.push_str(&line);
                reply.push_str("\r\n");
            } else if lower.starts_with("to:") {
                reply.push_str(&format!("{line};tag=t404\r\n"));
            }
        }
        reply.push_str("Content-Length: 0\r\n\r\n");
        let _ = sock.send_to(reply.as_bytes(), from);
    }
}

#[test]
fn nothing_listening_is_refused_at_reachability() {
    let dir = TestDir::new("doctor-refused");
    let port = free_port();
    for transport in ["tcp", "udp"] {
        let path = config(
            &dir,
            &account_toml("alice", "pw", &format!("127.0.0.1:{port}"), transport, None),
            "",
        );
        let (ok, checks, _) = doctor(&path, &[]);
        assert!(!ok);
        expect(
            &checks,
            &[
                ("config", "passed"),
                ("dns", "passed"),
                ("reachability", "failed"),
                ("tls", "skipped"),
                ("options", "skipped"),
                ("register", "skipped"),
                ("nat", "skipped"),
                ("microphone", "skipped"),
                ("media", "skipped"),
            ],
        );
        let reach = check(&checks, "reachability");
        let ev = reach["evidence"].as_str().unwrap();
        assert!(
            ev.contains(&format!(
                "{transport} 127.0.0.1:{port}: refused (nothing listens there)"
            )),
            "{ev}"
        );
        let advice = reach["advice"].as_str().unwrap();
        assert!(
            advice.starts_with(&format!(
                "Nothing accepts SIP over {} on port {port} of 127.0.0.1",
                transport.to_uppercase()
            )),
            "{advice}"
        );
    }
}

#[test]
fn untrusted_tls_names_the_problem_and_the_pin_fixes_it() {
    let k = kamailio();
    let dir = TestDir::new("doctor-tls");
    // No tls_ca_file: the test CA is unknown to this computer.
    let path = config(
        &dir,
        &account_toml("alice", ALICE_PW, &k.tls_domain(), "tls", None),
        "",
    );
    let (ok, checks, _) = doctor(&path, &[]);
    assert!(!ok);
    let tls = check(&checks, "tls");
    assert_eq!(tls["status"], "failed", "{checks:?}");
    assert_eq!(check(&checks, "register")["status"], "skipped");
    let ev = tls["evidence"].as_str().unwrap();
    assert!(
        ev.contains("verification: server certificate is self-signed or from an untrusted CA"),
        "{ev}"
    );
    let pem = std::fs::read_to_string(&k.tls.cert_file).unwrap();
    let der = pem_block(&pem, "CERTIFICATE");
    let want = sha256_fingerprint(&der);
    assert!(ev.contains(&format!("fingerprint: {want}")), "{ev}");
    let advice = tls["advice"].as_str().unwrap();
    assert!(
        advice.contains("issued by `CN=Softline Test CA`"),
        "{advice}"
    );
    assert!(
        advice.contains(&format!("tls_pin_sha256 = \"{want}\"")),
        "{advice}"
    );

    // Following the advice: pin the printed fingerprint -> every check passes.
    let mut account = account_toml("alice", ALICE_PW, &k.tls_domain(), "tls", None);
    account.push_str(&format!("tls_pin_sha256 = \"{want}\"\n"));
    let path = config(&dir, &account, "");
    let (ok, checks, _) = doctor(&path, &[]);
    let tls = check(&checks, "tls");
    assert!(
        tls["evidence"]
            .as_str()
            .unwrap()
            .contains("(pinned fingerprint matches)"),
        "{tls}"
    );
    assert!(ok, "{}", serde_json::to_string_pretty(&checks).unwrap());
}

#[test]
fn bundle_holds_the_report_and_no_secret() {
    let k = kamailio();
    let dir = TestDir::new("doctor-bundle");
    let traces = dir.file("traces");
    std::fs::create_dir_all(&traces).unwrap();
    // A trace as an older, careless build might have left it.
    std::fs::write(
        traces.join("sip-trace.log"),
        format!(
            "REGISTER sip:x SIP/2.0\r\nAuthorization: Digest username=\"alice\", response=\"0123456789abcdef\", cnonce=\"c0ffee\"\r\nX-Oops: {ALICE_PW}\r\n\r\n"
        ),
    )
    .unwrap();
    let mut accounts = account_toml("alice", ALICE_PW, &k.domain(), "udp", None);
    accounts.push_str(&format!(
        "\n[[account]]\nid = \"b\"\nusername = \"bob\"\nauth_username = \"bob-auth\"\npassword = \"Second.Secret-77\"\ndomain = \"{}\"\n",
        k.domain()
    ));
    let extra = format!("[trace]\nenabled = true\ndir = \"{}\"\n", traces.display());
    let path = config(&dir, &accounts, &extra);
    let zip = dir.file("bundle.zip");
    let (ok, _, _) = doctor(&path, &["--bundle", zip.to_str().unwrap()]);
    assert!(ok);
    let bytes = std::fs::read(&zip).unwrap();
    for secret in [ALICE_PW, "Second.Secret-77", "0123456789abcdef", "c0ffee"] {
        assert!(
            !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "{secret} found in the bundle"
        );
    }
    // A valid zip with every part; the config keeps the non-secret keys.
    let list = Command::new("unzip").arg("-l").arg(&zip).output().unwrap();
    let list = String::from_utf8_lossy(&list.stdout);
    for name in [
        "report.json",
        "report.txt",
        "config.toml",
        "sip-trace/sip-trace.log",
        "devices.json",
        "versions.txt",
    ] {
        assert!(list.contains(name), "{name} missing:\n{list}");
    }
    let test = Command::new("unzip").arg("-t").arg(&zip).output().unwrap();
    assert!(
        test.status.success(),
        "{}",
        String::from_utf8_lossy(&test.stdout)
    );
    let config = Command::new("unzip")
        .args(["-p"])
        .arg(&zip)
        .arg("config.toml")
        .output()
        .unwrap();
    let config = String::from_utf8_lossy(&config.stdout);
    assert!(config.contains("password = \"<redacted>\""), "{config}");
    assert!(config.contains("auth_username = \"bob-auth\""), "{config}");
    let report = Command::new("unzip")
        .args(["-p"])
        .arg(&zip)
        .arg("report.json")
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&report.stdout).unwrap();
    assert_eq!(report[5]["check"], "register");
    assert_eq!(report[5]["status"], "passed");
    let versions = Command::new("unzip")
        .args(["-p"])
        .arg(&zip)
        .arg("versions.txt")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&versions.stdout).starts_with("softline 0."));
}

#[test]
fn config_error_names_file_line_and_key_and_unknown_account_lists_ids() {
    let dir = TestDir::new("doctor-config");
    let path = config(
        &dir,
        "[[account]]\nid = \"a\"\nusername = \"u\"\npassword = \"p\"\ndomain = \"x\"\ntransport = \"sctp\"\n",
        "",
    );
    let (ok, checks, _) = doctor(&path, &[]);
    assert!(!ok);
    let c = check(&checks, "config");
    assert_eq!(c["status"], "failed");
    let ev = c["evidence"].as_str().unwrap();
    assert!(ev.starts_with(&format!("{}:", path.display())), "{ev}");
    assert!(ev.contains("transport"), "{ev}");
    let advice = c["advice"].as_str().unwrap();
    assert!(advice.starts_with("Fix `"), "{advice}");
    assert!(advice.contains(" at line "), "{advice}");
    assert!(checks[1..].iter().all(|c| c["status"] == "skipped"));

    let path = config(
        &dir,
        &account_toml("alice", "pw", "127.0.0.1:5060", "udp", None),
        "",
    );
    let (ok, checks, _) = doctor(&path, &["--account", "nosuch"]);
    assert!(!ok);
    let ev = check(&checks, "config")["evidence"].as_str().unwrap();
    assert!(ev.ends_with("no account `nosuch` (accounts: a)"), "{ev}");
}

/// A config like [`config`] with the given `[audio]` input and output.
fn audio_config(
    dir: &TestDir,
    name: &str,
    account: &str,
    input: &str,
    extra: &str,
) -> std::path::PathBuf {
    let path = dir.file(name);
    let text = format!(
        "[sip]\nlisten_udp = \"127.0.0.1:0\"\nudp_keepalive_secs = 25\n\n[audio]\ninput = \"{input}\"\noutput = \"null\"\n{extra}\n{account}"
    );
    std::fs::write(&path, text).unwrap();
    path
}

fn write_wav(path: &Path, samples: &[i16]) {
    let mut w = softline::audio::wav::WavWriter::create(path, 8000).unwrap();
    w.write(samples).unwrap();
    w.finish().unwrap();
}

#[test]
fn microphone_tone_passes_silence_and_a_missing_device_fail() {
    let k = kamailio();
    let dir = TestDir::new("doctor-mic");
    let account = account_toml("alice", ALICE_PW, &k.domain(), "udp", None);
    let (tone, silent) = (dir.file("tone.wav"), dir.file("silent.wav"));
    // −20 dBFS peak 440 Hz tone, one second (looped); a second of zeros.
    write_wav(
        &tone,
        &softline::media::tone::sine(440.0, 8000, 3277.0, 8000),
    );
    write_wav(&silent, &[0; 8000]);

    let path = audio_config(
        &dir,
        "tone.toml",
        &account,
        &format!("loop:{}", tone.display()),
        "",
    );
    let (ok, checks, _) = doctor(&path, &[]);
    let mic = check(&checks, "microphone");
    assert_eq!(mic["status"], "passed", "{mic}");
    let ev = mic["evidence"].as_str().unwrap();
    assert!(ev.contains("microphone: looped file"), "{ev}");
    assert!(
        ev.contains("listened 3.0 s: level -23.0 dBFS RMS, peak -20.0 dBFS"),
        "{ev}"
    );
    assert!(ev.contains("speaker: `null`"), "{ev}");
    // The media check (built-in loopback) ran after it and passed.
    let media = check(&checks, "media");
    assert_eq!(media["status"], "passed", "{media}");
    let ev = media["evidence"].as_str().unwrap();
    assert!(ev.contains("built-in loopback (opus"), "{ev}");
    assert!(ev.contains("tone 1000 Hz back: "), "{ev}");
    assert!(ok, "{}", serde_json::to_string_pretty(&checks).unwrap());

    let path = audio_config(
        &dir,
        "silent.toml",
        &account,
        &format!("file:{}", silent.display()),
        "",
    );
    let (ok, checks, _) = doctor(&path, &[]);
    assert!(!ok);
    let mic = check(&checks, "microphone");
    assert_eq!(mic["status"], "failed", "{mic}");
    let ev = mic["evidence"].as_str().unwrap();
    assert!(
        ev.contains("microphone delivers silence (peak -inf dBFS"),
        "{ev}"
    );
    let advice = mic["advice"].as_str().unwrap();
    assert!(
        advice.contains("muted, not permitted (OS privacy"),
        "{advice}"
    );
    assert!(advice.contains("or the wrong device"), "{advice}");
    assert_eq!(check(&checks, "media")["status"], "skipped");

    let path = audio_config(&dir, "missing.toml", &account, "No Such Mic 4711", "");
    let (ok, checks, _) = doctor(&path, &[]);
    assert!(!ok);
    let mic = check(&checks, "microphone");
    assert_eq!(mic["status"], "failed", "{mic}");
    let ev = mic["evidence"].as_str().unwrap();
    assert!(
        ev.contains("device `No Such Mic 4711` not found; present inputs: "),
        "{ev}"
    );
    assert!(
        mic["advice"]
            .as_str()
            .unwrap()
            .contains("Plug in `No Such Mic 4711`")
    );

    // A file that is not there names the file.
    let path = audio_config(
        &dir,
        "nofile.toml",
        &account,
        "file:/nonexistent/mic.wav",
        "",
    );
    let (_, checks, _) = doctor(&path, &[]);
    let mic = check(&checks, "microphone");
    assert_eq!(mic["status"], "failed", "{mic}");
    assert!(
        mic["evidence"]
            .as_str()
            .unwrap()
            .contains("/nonexistent/mic.wav"),
        "{mic}"
    );
}

#[test]
fn echo_extension_test_call_brings_the_tone_back() {
    // SIPp answers calls to `echo` (relayed by Kamailio) and sends every
    // RTP packet back to where it came from.
    let mut uas = support::Sipp::uas_with("uas_answer.xml", &["-rtp_echo"]);
    let k = Kamailio::start(KamailioOpts {
        users: vec![("alice".into(), ALICE_PW.into())],
        echo_target: Some(uas.addr()),
    });
    let dir = TestDir::new("doctor-echo");
    let path = config(
        &dir,
        &account_toml("alice", ALICE_PW, &k.domain(), "udp", None),
        "[doctor]\necho_extension = \"echo\"\n",
    );
    let (ok, checks, _) = doctor(&path, &[]);
    let media = check(&checks, "media");
    let ev = media["evidence"].as_str().unwrap();
    assert_eq!(media["status"], "passed", "{media}\n{}", uas.logs());
    assert!(
        ev.starts_with("test call to `echo` (echo extension)"),
        "{ev}"
    );
    assert!(ev.contains("answered"), "{ev}");
    assert!(ev.contains("codec PCMU"), "{ev}");
    assert!(ev.contains("tone 1000 Hz back: "), "{ev}");
    assert!(ok);
    // The call was hung up: SIPp got its BYE and finished.
    let status = uas
        .wait(Duration::from_secs(10))
        .expect("the UAS ends with the BYE");
    assert!(status.success(), "{}", uas.logs());
}
