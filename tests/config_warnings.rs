//! Config warnings and the admin's locks as the faces see them: unknown
//! keys in every layer are warnings (file, line, key, "did you mean"), not
//! errors; `config check` / `config show` / `ctl status` show them; a ctl
//! command changing a locked setting is refused; a readable file holding a
//! password is warned about in every layer.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::Command;

use softline::config::{Config, LayerPaths};
use support::TestDir;

fn paths(system: &Path, profile: &Path, user: &Path) -> LayerPaths {
    LayerPaths {
        system: Some(system.to_path_buf()),
        profile: Some(profile.to_path_buf()),
        user: user.to_path_buf(),
    }
}

fn softline() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_softline"));
    cmd.env_remove("SOFTLINE_PROFILE");
    cmd.env_remove("SOFTLINE_SYSTEM_CONFIG");
    cmd
}

const SYSTEM_TYPO: &str = "[sip]\nuser_agent = \"Acme\"\nt1_mss = 400\n\n[sipp]\nx = 1\n";
const PROFILE_TYPO: &str = "[[account]]\nid = \"main\"\nusername = \"1001\"\ndomain = \"pbx.test\"\n\
                            pasword = \"hunter2-secret\"\n";
const USER_TYPO: &str = "[media]\nptime_ms = 40\nptimems = 30\n";

#[test]
fn unknown_keys_in_every_layer_warn_with_file_line_key_and_a_guess() {
    let d = TestDir::new("warn-layers");
    let system = d.write("system.toml", SYSTEM_TYPO);
    let profile = d.write("profile.toml", PROFILE_TYPO);
    let user = d.write("user.toml", USER_TYPO);
    let c = paths(&system, &profile, &user).load(true).unwrap();
    // Known values still apply.
    assert_eq!(c.sip.user_agent, "Acme");
    assert_eq!(c.media.ptime_ms, 40);
    assert_eq!(c.accounts[0].id, "main");
    let w = &c.provenance.warnings;
    for expected in [
        format!(
            "{}:3: unknown key `sip.t1_mss` is ignored (did you mean `t1_ms`?)",
            system.display()
        ),
        format!(
            "{}:5: unknown key `sipp` is ignored (did you mean `sip`?)",
            system.display()
        ),
        format!(
            "{}:5: unknown key `account.main.pasword` is ignored (did you mean `password`?)",
            profile.display()
        ),
        format!(
            "{}:3: unknown key `media.ptimems` is ignored (did you mean `ptime_ms`?)",
            user.display()
        ),
    ] {
        assert!(w.contains(&expected), "`{expected}` not in {w:#?}");
    }
    assert!(w.iter().all(|w| !w.contains("hunter2")), "{w:#?}");

    // The user file alone (no admin layer) warns the same way.
    let none = d.file("none.toml");
    let c = LayerPaths {
        system: Some(none.clone()),
        profile: None,
        user: user.clone(),
    }
    .load(true)
    .unwrap();
    assert_eq!(
        c.provenance.warnings,
        [format!(
            "{}:3: unknown key `media.ptimems` is ignored (did you mean `ptime_ms`?)",
            user.display()
        )]
    );
    // A wrong type is still an error naming file, line and key, in a layer too.
    let bad = d.write("bad.toml", "[media]\nptime = 30\n\nptime_ms = \"forty\"\n");
    let e = paths(&system, &profile, &bad).load(true).unwrap_err();
    assert_eq!(
        (e.file.clone(), e.line, e.key.as_deref()),
        (bad.clone(), Some(4), Some("media.ptime_ms")),
        "{e}"
    );
    assert_eq!(
        Config::load(&bad).unwrap_err().key.as_deref(),
        Some("media.ptime_ms")
    );
}

#[test]
fn config_check_and_show_print_unknown_key_warnings() {
    let d = TestDir::new("warn-cli");
    let file = d.write("typo.toml", PROFILE_TYPO);
    let out = softline()
        .args(["config", "check"])
        .arg(&file)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains(&format!(
            "warning: {}:5: unknown key `account.main.pasword` is ignored (did you mean `password`?)",
            file.display()
        )),
        "{err}"
    );
    assert!(!err.contains("hunter2"), "{err}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("OK (1 account(s))"));
    // An error still fails.
    let bad = d.write("bad.toml", "[sipp]\n[media]\nptime_ms = 25\n");
    let out = softline()
        .args(["config", "check"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));

    let system = d.write("system.toml", SYSTEM_TYPO);
    let user = d.write("user.toml", USER_TYPO);
    for json in [false, true] {
        let mut cmd = softline();
        cmd.env("SOFTLINE_SYSTEM_CONFIG", &system)
            .env("SOFTLINE_PROFILE", &file)
            .arg("--config")
            .arg(&user)
            .args(["config", "show", "--effective"]);
        if json {
            cmd.arg("--json");
        }
        let out = cmd.output().unwrap();
        assert!(out.status.success());
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(!text.contains("hunter2"), "{text}");
        let warning = format!(
            "{}:3: unknown key `media.ptimems` is ignored (did you mean `ptime_ms`?)",
            user.display()
        );
        if json {
            let v: serde_json::Value = serde_json::from_str(&text).unwrap();
            let warnings = v["warnings"].as_array().unwrap();
            assert!(warnings.contains(&serde_json::json!(warning)), "{v}");
        } else {
            assert!(text.contains(&format!("# warning: {warning}")), "{text}");
        }
    }
}

/// Every layer holding a password in a file others can read is warned
/// about, naming that file; a private file is not.
#[cfg(unix)]
#[test]
fn readable_password_files_are_warned_about_in_every_layer() {
    let d = TestDir::new("warn-modes");
    let account = |pw: &str| {
        format!(
            "[[account]]\nid = \"main\"\nusername = \"1\"\ndomain = \"x\"\npassword = \"{pw}\"\n"
        )
    };
    let system = d.write_mode("system.toml", &account("sys-secret"), 0o644);
    let profile = d.write_mode("profile.toml", &account("prof-secret"), 0o640);
    let user = d.write_mode("user.toml", &account("user-secret"), 0o604);
    let c = paths(&system, &profile, &user).load(true).unwrap();
    let w = &c.provenance.warnings;
    for (file, mode) in [(&system, "644"), (&profile, "640"), (&user, "604")] {
        let expected = format!(
            "{}: holds a password but other users can read it (mode {mode})",
            file.display()
        );
        assert!(
            w.iter().any(|w| w.starts_with(&expected)),
            "{expected} not in {w:#?}"
        );
    }
    assert!(w.iter().all(|w| !w.contains("secret")), "{w:#?}");
    // Private files: no warning.
    for f in [&system, &profile, &user] {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(f, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let c = paths(&system, &profile, &user).load(true).unwrap();
    assert!(
        c.provenance.warnings.is_empty(),
        "{:?}",
        c.provenance.warnings
    );
}

/// One request on the control socket, the raw reply line as JSON.
#[cfg(unix)]
fn request(socket: &Path, line: &str) -> serde_json::Value {
    let mut s = std::os::unix::net::UnixStream::connect(socket).unwrap();
    s.write_all(format!("{line}\n").as_bytes()).unwrap();
    let mut reply = String::new();
    BufReader::new(s).read_line(&mut reply).unwrap();
    serde_json::from_str(&reply).unwrap_or_else(|e| panic!("{e}: {reply}"))
}

/// A real headless phone whose system file locks DND, busy forwarding and
/// the trace: ctl refuses those commands (and changes nothing), accepts the
/// unlocked ones, and `status` carries the config's warnings.
#[cfg(unix)]
#[test]
#[allow(clippy::disallowed_methods)] // a real process: wall-clock polling
fn ctl_refuses_locked_settings_and_status_lists_config_warnings() {
    let d = TestDir::new("warn-ctl");
    let system = d.write(
        "system.toml",
        "[lock]\nkeys = [\"phone.dnd\", \"phone.forward_busy\", \"trace\"]\n\n\
         [sip]\nlisten_udp = \"127.0.0.1:0\"\n\n[audio]\ninput = \"null\"\noutput = \"null\"\n\n\
         [phone]\ndnd = false\n\n\
         [[account]]\nid = \"desk\"\nusername = \"1001\"\ndomain = \"127.0.0.1\"\nregister = false\n",
    );
    let user = d.write("user.toml", "[phone]\nlines = 4\nlinez = 2\n");
    let mut cmd = softline();
    cmd.env("SOFTLINE_SYSTEM_CONFIG", &system);
    let (mut child, socket, stderr) = support::spawn_headless(&d, cmd, &user);
    let locked = |key: &str| {
        serde_json::json!({
            "ok": false,
            "error": format!("`{key}` is locked by the administrator ({})", system.display()),
        })
    };
    assert_eq!(
        request(&socket, r#"{"cmd":"dnd","on":true}"#),
        locked("phone.dnd")
    );
    assert_eq!(
        request(
            &socket,
            r#"{"cmd":"forward","mode":"busy","target":"sip:2000@127.0.0.1"}"#
        ),
        locked("phone.forward_busy")
    );
    // `off` would clear the locked busy rule too.
    assert_eq!(
        request(&socket, r#"{"cmd":"forward","mode":"off","target":null}"#),
        locked("phone.forward_busy")
    );
    assert_eq!(
        request(&socket, r#"{"cmd":"trace","on":true}"#),
        locked("trace.enabled")
    );
    // An unlocked setting still changes.
    let ok = request(
        &socket,
        r#"{"cmd":"forward","mode":"always","target":"sip:3000@127.0.0.1"}"#,
    );
    assert_eq!(ok["ok"], true, "{ok}");
    let status = request(&socket, r#"{"cmd":"status"}"#);
    let result = &status["result"];
    assert_eq!(result["settings"]["dnd"], false, "{status}");
    assert_eq!(result["settings"]["forward_busy"], serde_json::Value::Null);
    assert_eq!(
        result["settings"]["forward_always"], "sip:3000@127.0.0.1",
        "{status}"
    );
    assert_eq!(result["settings"]["lines"], 4);
    assert_eq!(result["trace"]["enabled"], false);
    let warning = format!(
        "{}:3: unknown key `phone.linez` is ignored (did you mean `lines`?)",
        user.display()
    );
    assert_eq!(
        result["config_warnings"],
        serde_json::json!([warning]),
        "{status}"
    );
    // `ctl status --json` shows the same.
    let out = softline()
        .args(["ctl", "--socket"])
        .arg(&socket)
        .args(["status", "--json"])
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["config_warnings"], serde_json::json!([warning]));
    // The refusal reaches `softline ctl` as an error exit.
    let out = softline()
        .args(["ctl", "--socket"])
        .arg(&socket)
        .args(["dnd", "on"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("is locked by the administrator"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    request(&socket, r#"{"cmd":"shutdown"}"#);
    let _ = child.wait();
    let log = std::fs::read_to_string(&stderr).unwrap();
    assert!(log.contains(&warning), "`{warning}` not in\n{log}");
}
