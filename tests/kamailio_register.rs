//! Softline against a real Kamailio (registrar + proxy, digest auth) and
//! SIPp peers. The `fixture_*` tests prove the Kamailio/SIPp fixture with
//! SIPp as the client (they need no phone); the `phone_*` tests drive the
//! `softline` binary over its control socket.
#![cfg(unix)]
#![allow(clippy::disallowed_methods)]

mod support;

use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};
use support::{
    Kamailio, KamailioOpts, Phone, Sipp, account_toml, account0, call0, free_port, free_udp_port,
    phone_config,
};

const TEN_S: Duration = Duration::from_secs(10);

fn register_with_sipp(
    k: &Kamailio,
    transport: &str,
    user: &str,
    password: &str,
    contact_port: u16,
    ok: bool,
) {
    let scenario = if ok {
        "register_ok.xml"
    } else {
        "register_rejected.xml"
    };
    let port = contact_port.to_string();
    let (status, logs) = Sipp::run_client(
        scenario,
        transport,
        k.addr(),
        &[
            "-s",
            user,
            "-au",
            user,
            "-ap",
            password,
            "-key",
            "contact_port",
            &port,
            "-key",
            "expires",
            "60",
        ],
        TEN_S,
    );
    assert!(
        status.success(),
        "{scenario} {user}/{password} over {transport}: {status}\n{logs}"
    );
}

// ---------------------------------------------------------------------------
// The fixture, proven with SIPp alone

#[test]
fn fixture_registrar_accepts_right_password_and_rejects_wrong_one() {
    let k = Kamailio::start(KamailioOpts::default());
    register_with_sipp(&k, "u1", "alice", "secret", 5999, true);
    register_with_sipp(&k, "t1", "bob", "hunter2", 5998, true);
    assert_eq!(
        k.bindings("alice"),
        vec!["sip:alice@127.0.0.1:5999".to_owned()]
    );
    assert_eq!(k.bindings("bob"), vec!["sip:bob@127.0.0.1:5998".to_owned()]);
    register_with_sipp(&k, "u1", "alice", "wrong", 5997, false);
    register_with_sipp(&k, "t1", "bob", "secret", 5997, false);
    register_with_sipp(&k, "u1", "mallory", "secret", 5997, false);
    assert!(k.bindings("mallory").is_empty());
    assert_eq!(
        k.bindings("alice").len(),
        1,
        "a rejected REGISTER adds no binding"
    );
    // Each SIPp REGISTER scenario sends exactly two REGISTERs; the log counts them.
    assert_eq!(k.count_requests("REGISTER", "alice"), 4);
}

#[test]
fn fixture_tls_listener_is_trusted_with_the_generated_ca_only() {
    let k = Kamailio::start(KamailioOpts::default());
    let connect = |extra: &[&str]| {
        let out = Command::new("openssl")
            .args([
                "s_client",
                "-connect",
                &k.tls_domain(),
                "-verify_return_error",
            ])
            .args(extra)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let ca = k.tls.ca_file.display().to_string();
    let by_ip = connect(&["-CAfile", &ca, "-verify_ip", "127.0.0.1"]);
    assert!(by_ip.contains("Verify return code: 0 (ok)"), "{by_ip}");
    let by_name = connect(&["-CAfile", &ca, "-verify_hostname", "localhost"]);
    assert!(by_name.contains("Verify return code: 0 (ok)"), "{by_name}");
    let untrusted = connect(&["-CApath", "/nonexistent", "-no-CAfile", "-no-CAstore"]);
    assert!(
        !untrusted.contains("Verify return code: 0 (ok)"),
        "{untrusted}"
    );
}

#[test]
fn fixture_relays_echo_calls_to_the_sipp_uas() {
    let mut uas = Sipp::uas("uas_answer.xml");
    let k = Kamailio::start(KamailioOpts {
        echo_target: Some(uas.addr()),
        ..KamailioOpts::default()
    });
    let (status, logs) = Sipp::run_client("uac_invite.xml", "u1", k.addr(), &["-s", "echo"], TEN_S);
    assert!(status.success(), "uac: {status}\n{logs}");
    let uas_status = uas.wait(TEN_S).expect("the UAS exits after its call");
    assert!(uas_status.success(), "uas: {uas_status}\n{}", uas.logs());
}

#[test]
fn fixture_routes_calls_to_a_registered_contact() {
    let mut uas = Sipp::uas("uas_answer.xml");
    let k = Kamailio::start(KamailioOpts::default());
    register_with_sipp(&k, "u1", "bob", "hunter2", uas.port, true);
    let (status, logs) = Sipp::run_client("uac_invite.xml", "u1", k.addr(), &["-s", "bob"], TEN_S);
    assert!(status.success(), "uac: {status}\n{logs}");
    let uas_status = uas.wait(TEN_S).expect("the UAS exits after its call");
    assert!(uas_status.success(), "uas: {uas_status}\n{}", uas.logs());
    let (status, logs) =
        Sipp::run_client("uac_invite.xml", "u1", k.addr(), &["-s", "nobody"], TEN_S);
    assert!(
        !status.success(),
        "a call to an unregistered user fails: {status}\n{logs}"
    );
}

// ---------------------------------------------------------------------------
// The phone

/// A command whose reply must be `{"ok":true,"result":"Done"}` (docs/ctl.md).
fn done(phone: &Phone, request: Value) {
    let result = phone.cmd(request.clone());
    assert_eq!(
        result,
        json!("Done"),
        "docs/ctl.md: {request} replies with result \"Done\""
    );
}

fn state(status: &Value) -> &str {
    account0(status)["state"].as_str().unwrap_or("")
}

fn start_phone(k: &Kamailio, user: &str, password: &str, transport: &str, with_ca: bool) -> Phone {
    let domain = if transport == "tls" {
        k.tls_domain()
    } else {
        k.domain()
    };
    let ca = with_ca.then_some(k.tls.ca_file.as_path());
    let account = account_toml(user, password, &domain, transport, ca);
    Phone::start(&phone_config(free_udp_port(), &[account]))
}

/// The SIP trace holds the REGISTERs and their credentials header, but
/// neither the password nor the digest response; nor does the log.
fn check_trace_is_redacted(phone: &Phone) {
    let trace = phone.trace_text();
    assert!(
        trace.contains("REGISTER sip:"),
        "trace records the REGISTERs:\n{trace}"
    );
    let auth: Vec<&str> = trace
        .lines()
        .filter(|l| l.starts_with("Authorization: Digest"))
        .collect();
    assert!(
        !auth.is_empty(),
        "the authorized REGISTER is traced:\n{trace}"
    );
    for line in auth {
        let response = line
            .split("response=")
            .nth(1)
            .map(|r| {
                r.trim_start_matches('"')
                    .split(['"', ','])
                    .next()
                    .unwrap_or("")
            })
            .unwrap_or("");
        assert!(
            !(response.len() == 32 && response.chars().all(|c| c.is_ascii_hexdigit())),
            "digest response leaked into the trace: {line}"
        );
    }
    for (what, text) in [("trace", trace.as_str()), ("log", &phone.stderr_text())] {
        assert!(!text.contains("secret"), "the password is in the {what}");
    }
}

fn register_cycle(transport: &str) {
    let k = Kamailio::start(KamailioOpts::default());
    let phone = start_phone(&k, "alice", "secret", transport, true);
    let status = phone
        .wait_for(|s| state(s) == "registered", TEN_S)
        .unwrap_or_else(|e| panic!("{transport}: {e}"));
    assert_eq!(account0(&status)["transport"], json!(transport));
    let bound = support::poll(Duration::from_secs(2), || {
        (!k.bindings("alice").is_empty()).then_some(())
    });
    assert!(
        bound.is_some(),
        "kamailio has alice's binding:\n{}",
        k.ul_dump()
    );
    check_trace_is_redacted(&phone);

    done(&phone, json!({"cmd": "unregister"}));
    phone
        .wait_for(|s| state(s) == "unregistered", TEN_S)
        .unwrap_or_else(|e| panic!("{transport}: {e}"));
    let gone = support::poll(Duration::from_secs(3), || {
        k.bindings("alice").is_empty().then_some(())
    });
    assert!(
        gone.is_some(),
        "binding removed after unregister:\n{}",
        k.ul_dump()
    );
}

#[test]
fn phone_registers_and_unregisters_over_udp() {
    register_cycle("udp");
}

#[test]
fn phone_registers_and_unregisters_over_tcp() {
    register_cycle("tcp");
}

#[test]
fn phone_registers_and_unregisters_over_tls() {
    register_cycle("tls");
}

#[test]
fn phone_wrong_password_fails_with_credentials_and_does_not_loop() {
    let k = Kamailio::start(KamailioOpts::default());
    let phone = start_phone(&k, "alice", "not-the-password", "udp", false);
    let status = phone.wait_for(|s| state(s) == "failed", TEN_S).unwrap();
    assert_eq!(
        account0(&status)["cause"],
        json!("credentials"),
        "{status:#}"
    );
    // Give a looping client time to show itself.
    std::thread::sleep(Duration::from_secs(3));
    let registers = k.count_requests("REGISTER", "alice");
    assert!(
        (1..=2).contains(&registers),
        "the phone sent {registers} REGISTERs (1 unauthenticated + 1 with credentials at most)"
    );
    assert!(k.bindings("alice").is_empty());
    assert_eq!(state(&phone.status()), "failed");
}

#[test]
fn phone_tls_without_the_ca_fails_with_tls_certificate() {
    let k = Kamailio::start(KamailioOpts::default());
    let phone = start_phone(&k, "alice", "secret", "tls", false);
    let status = phone.wait_for(|s| state(s) == "failed", TEN_S).unwrap();
    assert_eq!(
        account0(&status)["cause"],
        json!("tls_certificate"),
        "{status:#}"
    );
    assert_eq!(
        k.count_requests("REGISTER", "alice"),
        0,
        "no REGISTER over an untrusted connection"
    );
}

#[test]
fn phone_calls_the_sipp_uas_through_kamailio() {
    let mut uas = Sipp::uas("uas_answer.xml");
    let k = Kamailio::start(KamailioOpts {
        echo_target: Some(uas.addr()),
        ..KamailioOpts::default()
    });
    let phone = start_phone(&k, "alice", "secret", "udp", false);
    phone.wait_for(|s| state(s) == "registered", TEN_S).unwrap();

    let result = phone.cmd(json!({"cmd": "call", "target": "echo"}));
    assert!(result["call"].is_u64(), "call returns its id: {result}");
    let status = phone
        .wait_for(|s| call0(s)["state"] == json!("connected"), TEN_S)
        .unwrap();
    assert_eq!(call0(&status)["direction"], json!("outgoing"));
    assert_eq!(call0(&status)["status_code"], json!(200));

    done(&phone, json!({"cmd": "hangup"}));
    phone
        .wait_for(|s| call0(s)["state"] == json!("ended"), TEN_S)
        .unwrap();
    let uas_status = uas
        .wait(TEN_S)
        .expect("the UAS exits once the BYE is answered");
    assert!(uas_status.success(), "uas: {uas_status}\n{}", uas.logs());
}

#[test]
fn phone_answers_an_incoming_call_through_kamailio() {
    let k = Kamailio::start(KamailioOpts::default());
    let phone = start_phone(&k, "bob", "hunter2", "udp", false);
    phone.wait_for(|s| state(s) == "registered", TEN_S).unwrap();

    let mut uac = Sipp::client("uac_invite.xml", "u1", k.addr(), &["-s", "bob"]);
    let status = phone
        .wait_for(|s| call0(s)["state"] == json!("ringing"), TEN_S)
        .unwrap_or_else(|e| panic!("{e}\n{}", uac.logs()));
    assert_eq!(call0(&status)["direction"], json!("incoming"));

    done(&phone, json!({"cmd": "answer"}));
    // SIPp acknowledges the 200, hangs up after 1 s and exits 0 on the 200 to its BYE.
    let uac_status = uac.wait(TEN_S).expect("the caller finishes");
    assert!(uac_status.success(), "uac: {uac_status}\n{}", uac.logs());
    let status = phone
        .wait_for(|s| call0(s)["state"] == json!("ended"), TEN_S)
        .unwrap();
    assert_eq!(
        call0(&status)["cause"],
        json!("remote party hung up"),
        "{status:#}"
    );
}

#[test]
fn phone_unknown_host_fails_with_dns_cause() {
    let account = account_toml("alice", "secret", "pbx.invalid", "udp", None);
    let phone = Phone::start(&phone_config(free_udp_port(), &[account]));
    let status = phone.wait_for(|s| state(s) == "failed", TEN_S).unwrap();
    let a = account0(&status);
    assert_eq!(a["cause"], json!("dns"), "{status:#}");
    assert!(
        a["reason"].as_str().unwrap_or("").contains("pbx.invalid"),
        "the reason names the host: {status:#}"
    );
}

#[test]
fn phone_nothing_listening_fails_with_refused_on_tcp() {
    let domain = format!("127.0.0.1:{}", free_port());
    let account = account_toml("alice", "secret", &domain, "tcp", None);
    let phone = Phone::start(&phone_config(free_udp_port(), &[account]));
    let status = phone.wait_for(|s| state(s) == "failed", TEN_S).unwrap();
    assert_eq!(account0(&status)["cause"], json!("refused"), "{status:#}");
}

#[test]
fn phone_nothing_answering_fails_with_timeout_on_udp() {
    let domain = format!("127.0.0.1:{}", free_udp_port());
    let account = account_toml("alice", "secret", &domain, "udp", None);
    // T1 = 50 ms: Timer F gives up after 64 × T1 = 3.2 s.
    let config =
        phone_config(free_udp_port(), &[account]).replacen("[sip]\n", "[sip]\nt1_ms = 50\n", 1);
    let phone = Phone::start(&config);
    let status = phone.wait_for(|s| state(s) == "failed", TEN_S).unwrap();
    assert_eq!(account0(&status)["cause"], json!("timeout"), "{status:#}");
}

/// The registrar goes away and comes back (a PBX restart): the phone
/// notices the lost TCP connection, probes, and is registered again soon
/// after the registrar returns. The figure is printed for
/// docs/benchmarks.md; the bound is loose (2 s probe interval + 1 s slack).
#[test]
fn phone_reregisters_soon_after_the_registrar_restarts() {
    let mut k = Kamailio::start(KamailioOpts::default());
    let phone = start_phone(&k, "alice", "secret", "tcp", true);
    phone.wait_for(|s| state(s) == "registered", TEN_S).unwrap();
    k.stop();
    let status = phone.wait_for(|s| state(s) != "registered", TEN_S).unwrap();
    assert!(
        ["registering", "failed"].contains(&state(&status)),
        "{status:#}"
    );
    // Stay down long enough for the phone to be in its retry ladder.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(state(&phone.status()), "failed");
    k.restart();
    let back = std::time::Instant::now();
    phone.wait_for(|s| state(s) == "registered", TEN_S).unwrap();
    let took = back.elapsed();
    eprintln!(
        "re-registered {} ms after the registrar was back",
        took.as_millis()
    );
    assert!(took <= Duration::from_secs(3), "took {took:?}");
    let bound = support::poll(Duration::from_secs(2), || {
        (!k.bindings("alice").is_empty()).then_some(())
    });
    assert!(bound.is_some(), "binding restored:\n{}", k.ul_dump());
}

#[test]
fn phone_unregisters_on_shutdown() {
    let k = Kamailio::start(KamailioOpts::default());
    let phone = start_phone(&k, "alice", "secret", "udp", false);
    phone.wait_for(|s| state(s) == "registered", TEN_S).unwrap();
    assert!(
        support::poll(Duration::from_secs(2), || (!k.bindings("alice").is_empty())
            .then_some(()))
        .is_some()
    );
    done(&phone, json!({"cmd": "shutdown"}));
    let gone = support::poll(Duration::from_secs(3), || {
        k.bindings("alice").is_empty().then_some(())
    });
    assert!(
        gone.is_some(),
        "binding removed at shutdown:\n{}",
        k.ul_dump()
    );
}
