//! Layered configuration: system file < provisioned profile < user file,
//! admin locks, origins, `softline config show/check`, and docs that cannot
//! drift from the config structs.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use proptest::prelude::*;
use softline::config::{Config, LayerPaths};
use support::{TestDir, set_mode};

fn paths(system: Option<&Path>, profile: Option<&Path>, user: &Path) -> LayerPaths {
    LayerPaths {
        system: system.map(Path::to_path_buf),
        profile: profile.map(Path::to_path_buf),
        user: user.to_path_buf(),
    }
}

fn origin(c: &Config, key: &str) -> Option<(PathBuf, Option<usize>)> {
    c.origin(key).map(|o| (o.file.clone(), o.line))
}

const SYSTEM: &str = r#"[sip]
user_agent = "Acme agent phone"

[media]
ptime_ms = 30
codecs = ["PCMU", "PCMA"]

[[account]]
id = "main"
username = "1001"
domain = "pbx.acme.test"
transport = "tcp"
"#;

#[test]
fn without_a_system_file_the_user_file_loads_exactly_as_before() {
    let d = TestDir::new("layers-plain");
    let user = d.write(
        "user.toml",
        "[media]\nptime_ms = 40\n\n[[account]]\nid = \"a\"\nusername = \"1\"\ndomain = \"x\"\n",
    );
    let none = d.file("no-such-system.toml");
    let c = paths(Some(&none), None, &user).load(true).unwrap();
    let plain = Config::load(&user).unwrap();
    assert_eq!(c.media.ptime_ms, 40);
    assert_eq!(format!("{:?}", c.accounts), format!("{:?}", plain.accounts));
    assert_eq!(origin(&c, "media.ptime_ms"), Some((user.clone(), Some(2))));
    assert_eq!(
        origin(&c, "account.a.domain"),
        Some((user.clone(), Some(7)))
    );
    assert!(
        c.provenance.warnings.is_empty(),
        "{:?}",
        c.provenance.warnings
    );
    // Errors are the very same as the single-file loader's.
    let bad = d.write(
        "bad.toml",
        "[sip]\nlisten_udp = \"0.0.0.0:5060\"\nt1_ms = \"x\"\n",
    );
    let layered = paths(Some(&none), None, &bad).load(true).unwrap_err();
    assert_eq!(layered, Config::load(&bad).unwrap_err());
    // A missing user file: an error when required (headless), defaults
    // otherwise (the window's first run).
    let missing = d.file("missing.toml");
    let e = paths(Some(&none), None, &missing).load(true).unwrap_err();
    assert_eq!(e, Config::load(&missing).unwrap_err());
    let c = paths(Some(&none), None, &missing).load(false).unwrap();
    assert!(c.accounts.is_empty());
    assert_eq!(c.media.ptime_ms, 20);
}

#[test]
fn later_layers_override_per_key_and_accounts_merge_by_id() {
    let d = TestDir::new("layers-merge");
    let system = d.write("system.toml", SYSTEM);
    let profile = d.write(
        "profile.toml",
        "[media]\nptime_ms = 40\n\n[[account]]\nid = \"backup\"\nusername = \"2001\"\ndomain = \"backup.acme.test\"\n",
    );
    let user = d.write(
        "user.toml",
        "[media]\nptime_ms = 60\n\n[[account]]\nid = \"main\"\npassword = \"agent secret\"\ndisplay_name = \"Ann\"\n",
    );
    let c = paths(Some(&system), Some(&profile), &user)
        .load(true)
        .unwrap();
    assert_eq!(c.media.ptime_ms, 60);
    assert_eq!(c.media.codecs, ["PCMU", "PCMA"]);
    assert_eq!(c.sip.user_agent, "Acme agent phone");
    assert_eq!(c.sip.t1_ms, 500, "untouched keys keep their defaults");
    let ids: Vec<&str> = c.accounts.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(ids, ["main", "backup"]);
    let main = &c.accounts[0];
    assert_eq!(main.username, "1001");
    assert_eq!(main.domain.get_ref(), "pbx.acme.test");
    assert_eq!(main.password, "agent secret");
    assert_eq!(main.display_name.as_deref(), Some("Ann"));
    assert_eq!(main.transport, softline::sip::transport::TransportKind::Tcp);
    assert_eq!(origin(&c, "media.ptime_ms"), Some((user.clone(), Some(2))));
    assert_eq!(origin(&c, "media.codecs"), Some((system.clone(), Some(6))));
    assert_eq!(
        origin(&c, "account.main.domain"),
        Some((system.clone(), Some(11)))
    );
    assert_eq!(
        origin(&c, "account.main.password"),
        Some((user.clone(), Some(6)))
    );
    assert_eq!(
        origin(&c, "account.backup.domain"),
        Some((profile.clone(), Some(7)))
    );
    assert_eq!(origin(&c, "sip.t1_ms"), None);
    assert_eq!(
        origin(&c, "account.main.id"),
        Some((system.clone(), Some(9))),
        "an account is where it was first defined"
    );
    let kinds: Vec<&str> = c.provenance.layers.iter().map(|(k, _)| k.name()).collect();
    assert_eq!(kinds, ["system", "profile", "user"]);
    // The user file may be missing when the admin provides the config.
    let c = paths(Some(&system), None, &d.file("none.toml"))
        .load(true)
        .unwrap();
    assert_eq!(c.accounts.len(), 1);
    assert_eq!(c.media.ptime_ms, 30);
}

#[test]
fn a_validation_error_names_the_file_and_line_of_its_layer() {
    let d = TestDir::new("layers-errors");
    let system = d.write("system.toml", SYSTEM);
    // A range error in the user file.
    let user = d.write(
        "user.toml",
        "[sip]\nt1_ms = 400\n\n[media]\n\nptime_ms = 25\n",
    );
    let e = paths(Some(&system), None, &user).load(true).unwrap_err();
    assert_eq!(
        (e.file.clone(), e.line, e.key.as_deref()),
        (user.clone(), Some(6), Some("media.ptime_ms"))
    );
    // An account value in the user file, for the admin's account.
    let user = d.write(
        "user.toml",
        "# mine\n[[account]]\nid = \"main\"\n\nregistrar = \"pbx:99999\"\n",
    );
    let e = paths(Some(&system), None, &user).load(true).unwrap_err();
    assert_eq!(
        (e.file.clone(), e.line, e.key.as_deref()),
        (user.clone(), Some(5), Some("account.main.registrar"))
    );
    assert!(e.to_string().contains("99999"), "{e}");
    // A wrong type in the profile.
    let profile = d.write(
        "profile.toml",
        "[audio]\ninput = \"null\"\nlimiter = \"yes\"\n",
    );
    let user = d.write("user.toml", "");
    let e = paths(Some(&system), Some(&profile), &user)
        .load(true)
        .unwrap_err();
    assert_eq!(
        (e.file.clone(), e.line, e.key.as_deref()),
        (profile.clone(), Some(3), Some("audio.limiter"))
    );
    // An unknown key in the system file: a warning with its file and line
    // (tests/config_warnings.rs has more).
    let system = d.write(
        "system.toml",
        &format!("{SYSTEM}\n[trace]\nenabeld = true\n"),
    );
    let c = paths(Some(&system), None, &user).load(true).unwrap();
    assert_eq!(
        c.provenance.warnings,
        [format!(
            "{}:15: unknown key `trace.enabeld` is ignored (did you mean `enabled`?)",
            system.display()
        )]
    );
    // A new account in the user file missing a required key.
    let user = d.write(
        "user.toml",
        "[phone]\nlines = 2\n\n[[account]]\nid = \"mine\"\n",
    );
    let system = d.write("system.toml", SYSTEM);
    let e = paths(Some(&system), None, &user).load(true).unwrap_err();
    assert_eq!((e.file.clone(), e.line), (user.clone(), Some(5)));
    assert!(e.message.contains("missing field"), "{e}");
    // A TOML syntax error names its own file.
    let user = d.write("user.toml", "[media\nptime_ms = 20\n");
    let e = paths(Some(&system), None, &user).load(true).unwrap_err();
    assert_eq!((e.file.clone(), e.line), (user.clone(), Some(1)));
}

const LOCKING_SYSTEM: &str = r#"[lock]
keys = ["account.*.password", "media.codecs", "audio"]

[media]
codecs = ["PCMU"]

[[account]]
id = "main"
username = "1001"
password = "admin-set"
domain = "pbx.acme.test"
"#;

const LOCKED_USER: &str = r#"[media]
codecs = ["opus"]
ptime_ms = 40

[audio]
input = "null"

[[account]]
id = "main"
password = "mine"
display_name = "Ann"
"#;

#[test]
fn locked_values_from_the_user_file_are_ignored_with_a_warning() {
    let d = TestDir::new("layers-locks");
    let system = d.write("system.toml", LOCKING_SYSTEM);
    let user = d.write("user.toml", LOCKED_USER);
    let c = paths(Some(&system), None, &user).load(true).unwrap();
    assert_eq!(c.media.codecs, ["PCMU"]);
    assert_eq!(c.media.ptime_ms, 40, "an unlocked key still applies");
    assert_eq!(c.audio.input, "default");
    assert_eq!(c.accounts[0].password, "admin-set");
    assert_eq!(c.accounts[0].display_name.as_deref(), Some("Ann"));
    let w = &c.provenance.warnings;
    let u = user.display();
    for (line, key) in [
        (2, "media.codecs"),
        (6, "audio.input"),
        (10, "account.main.password"),
    ] {
        let expected = format!("{u}:{line}: key `{key}` is locked by the administrator");
        assert!(
            w.iter().any(|x| x.starts_with(&expected)),
            "{expected} not in {w:?}"
        );
    }
    assert_eq!(w.len(), 3, "{w:?}");
    assert!(
        w.iter().all(|x| !x.contains("mine")),
        "a secret reached a warning: {w:?}"
    );
    assert!(c.is_locked("account.main.password"));
    assert!(c.is_locked("account.other.password"));
    assert!(c.is_locked("audio.limiter"));
    assert!(c.is_locked("media.codecs"));
    assert!(!c.is_locked("media.ptime_ms"));
    assert!(!c.is_locked("account.main.display_name"));
    assert_eq!(
        origin(&c, "account.main.password"),
        Some((system.clone(), Some(10)))
    );
}

#[test]
fn the_profile_obeys_system_locks_and_can_lock_for_the_user() {
    let d = TestDir::new("layers-profile-locks");
    let system = d.write(
        "system.toml",
        "[lock]\nkeys = [\"phone.dnd\"]\n\n[provisioning]\nprofile_cache = \"profile.toml\"\n",
    );
    d.write(
        "profile.toml",
        "[lock]\nkeys = [\"phone.lines\"]\n\n[phone]\ndnd = true\nlines = 2\n",
    );
    let user = d.write("user.toml", "[phone]\nlines = 4\nbusy_on_busy = true\n");
    // The profile comes from the system file's [provisioning] profile_cache.
    let c = paths(Some(&system), None, &user).load(true).unwrap();
    assert!(!c.phone.dnd, "the system lock holds against the profile");
    assert_eq!(
        c.phone.lines, 2,
        "the profile's lock holds against the user"
    );
    assert!(c.phone.busy_on_busy);
    assert_eq!(c.lock.keys, ["phone.dnd", "phone.lines"]);
    assert_eq!(
        c.provenance.warnings.len(),
        2,
        "{:?}",
        c.provenance.warnings
    );
    // A [lock] in the user file locks nothing.
    let user = d.write("user.toml", "[lock]\nkeys = [\"media\"]\n");
    let c = paths(Some(&system), None, &user).load(true).unwrap();
    assert!(!c.is_locked("media.codecs"));
    assert!(
        c.provenance
            .warnings
            .iter()
            .any(|w| w.starts_with(&format!("{}:1: `[lock]` is ignored", user.display()))),
        "{:?}",
        c.provenance.warnings
    );
    // A profile named but not there yet: a warning, and the phone starts.
    std::fs::remove_file(d.file("profile.toml")).unwrap();
    let c = paths(Some(&system), None, &user).load(true).unwrap();
    assert!(
        c.provenance
            .warnings
            .iter()
            .any(|w| w.contains("no provisioned profile")),
        "{:?}",
        c.provenance.warnings
    );
    // A lock on an unknown section is an admin error with its line.
    let system = d.write("system.toml", "[lock]\nkeys = [\"meida\"]\n");
    let e = paths(Some(&system), None, &user).load(true).unwrap_err();
    assert_eq!(
        (e.file.clone(), e.line, e.key.as_deref()),
        (system.clone(), Some(2), Some("lock.keys"))
    );
}

#[test]
fn a_face_may_not_write_a_change_to_a_locked_key() {
    let d = TestDir::new("layers-gui-locks");
    let system = d.write("system.toml", LOCKING_SYSTEM);
    let user = d.write("user.toml", "");
    let c = paths(Some(&system), None, &user).load(true).unwrap();
    let same = "[[account]]\nid = \"main\"\npassword = \"admin-set\"\ndisplay_name = \"Bo\"\n";
    assert_eq!(c.locked_changes(same), Vec::<String>::new());
    let changed = "[media]\nptime_ms = 30\ncodecs = [\"opus\"]\n[[account]]\nid = \"main\"\npassword = \"new\"\n";
    assert_eq!(
        c.locked_changes(changed),
        ["account.main.password", "media.codecs"]
    );
}

#[test]
fn show_effective_names_every_origin_and_redacts_secrets() {
    let d = TestDir::new("layers-show");
    let system = d.write("system.toml", LOCKING_SYSTEM);
    let user = d.write("user.toml", LOCKED_USER);
    let c = paths(Some(&system), None, &user).load(true).unwrap();
    let text = c.show_effective();
    assert!(
        !text.contains("admin-set") && !text.contains("mine"),
        "{text}"
    );
    let s = system.display();
    let u = user.display();
    for needle in [
        format!("password = \"***\"  # {s}:10 (locked)"),
        format!("codecs = [\"PCMU\"]  # {s}:5 (locked)"),
        format!("ptime_ms = 40  # {u}:3\n"),
        "t1_ms = 500  # default\n".to_string(),
        "input = \"default\"  # default (locked)\n".to_string(),
        "[[account]] # main".to_string(),
        format!("# layer system: {s}"),
        format!("# layer user: {u}"),
    ] {
        assert!(text.contains(&needle), "`{needle}` not in\n{text}");
    }
    let json = c.show_effective_json();
    let values = json["values"].as_array().unwrap();
    let get = |k: &str| values.iter().find(|v| v["key"] == k).cloned().unwrap();
    let pw = get("account.main.password");
    assert_eq!(pw["value"], "***");
    assert_eq!(pw["locked"], true);
    assert_eq!(pw["line"], 10);
    assert_eq!(pw["file"], system.display().to_string());
    assert_eq!(get("sip.t1_ms")["origin"], "default");
    assert_eq!(get("media.ptime_ms")["origin"], format!("{u}:3"));
    assert_eq!(json["warnings"].as_array().unwrap().len(), 3);
    assert!(!json.to_string().contains("admin-set"));
}

#[cfg(unix)]
#[test]
fn a_password_others_can_read_is_warned_about() {
    let d = TestDir::new("layers-mode");
    let user = d.write(
        "user.toml",
        "[[account]]\nid = \"a\"\nusername = \"1\"\npassword = \"pw\"\ndomain = \"x\"\n",
    );
    let none = d.file("none.toml");
    let c = paths(Some(&none), None, &user).load(true).unwrap();
    assert!(
        c.provenance.warnings.is_empty(),
        "{:?}",
        c.provenance.warnings
    );
    assert!(softline::config::check_file(&user).unwrap().1.is_empty());
    set_mode(&user, 0o644);
    let c = paths(Some(&none), None, &user).load(true).unwrap();
    let expected = format!(
        "{}: holds a password but other users can read it (mode 644)",
        user.display()
    );
    assert!(
        c.provenance
            .warnings
            .iter()
            .any(|w| w.starts_with(&expected)),
        "{:?}",
        c.provenance.warnings
    );
    let (_, warnings) = softline::config::check_file(&user).unwrap();
    assert!(
        warnings.iter().any(|w| w.starts_with(&expected)),
        "{warnings:?}"
    );
    // No password, no warning.
    let plain = d.write("plain.toml", "[media]\nptime_ms = 20\n");
    set_mode(&plain, 0o644);
    assert!(softline::config::check_file(&plain).unwrap().1.is_empty());
}

fn softline() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_softline"));
    cmd.env_remove("SOFTLINE_PROFILE");
    cmd
}

#[test]
fn config_check_and_show_from_the_command_line() {
    let d = TestDir::new("layers-cli");
    let bad = d.write("bad.toml", "[media]\n\nptime_ms = 25\n");
    for sub in [&["config", "check"][..], &["check-config"][..]] {
        let out = softline().args(sub).arg(&bad).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{sub:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.starts_with(&format!("{}:3: key `media.ptime_ms`", bad.display())),
            "{sub:?}: {err}"
        );
    }
    let good = d.write("good.toml", "[media]\nptime_ms = 20\n");
    let out = softline()
        .args(["config", "check"])
        .arg(&good)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("OK (0 account(s))"));

    let system = d.write("system.toml", LOCKING_SYSTEM);
    let user = d.write("user.toml", LOCKED_USER);
    let out = softline()
        .env("SOFTLINE_SYSTEM_CONFIG", &system)
        .arg("--config")
        .arg(&user)
        .args(["config", "show", "--effective", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!stdout.contains("admin-set") && !stdout.contains("\"mine\""));
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let values = json["values"].as_array().unwrap();
    let codecs = values.iter().find(|v| v["key"] == "media.codecs").unwrap();
    assert_eq!(codecs["value"], serde_json::json!(["PCMU"]));
    assert_eq!(codecs["origin"], format!("{}:5", system.display()));
    let out = softline()
        .env("SOFTLINE_SYSTEM_CONFIG", &system)
        .arg("--config")
        .arg(&user)
        .args(["config", "show", "--effective"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("password = \"***\""), "{text}");
    assert!(text.contains("# warning: "), "{text}");
}

/// A headless phone started from the system file alone (no user file):
/// the admin's account is there, and the ignored locked value was logged.
#[cfg(unix)]
#[test]
#[allow(clippy::disallowed_methods)] // a real process: wall-clock polling
fn headless_starts_from_the_system_file_and_logs_lock_warnings() {
    let d = TestDir::new("layers-headless");
    let system = d.write(
        "system.toml",
        "[lock]\nkeys = [\"audio\"]\n\n[sip]\nlisten_udp = \"127.0.0.1:0\"\n\n[audio]\ninput = \"null\"\noutput = \"null\"\n\n[[account]]\nid = \"desk\"\nusername = \"1001\"\ndomain = \"127.0.0.1\"\nregister = false\n",
    );
    let profile = d.write("profile.toml", "[audio]\ninput = \"default\"\n");
    let mut cmd = softline();
    cmd.env("SOFTLINE_SYSTEM_CONFIG", &system)
        .env("SOFTLINE_PROFILE", &profile);
    let (mut child, socket, stderr) = support::spawn_headless(&d, cmd, &d.file("no-user.toml"));
    let ctl = |args: &[&str]| {
        softline()
            .args(["ctl", "--socket"])
            .arg(&socket)
            .args(args)
            .output()
            .unwrap()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    let status = loop {
        if let Ok(Some(exit)) = child.try_wait() {
            panic!(
                "softline exited ({exit}):\n{}",
                std::fs::read_to_string(&stderr).unwrap_or_default()
            );
        }
        let out = ctl(&["status", "--json"]);
        if out.status.success() {
            break serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap();
        }
        assert!(std::time::Instant::now() < deadline, "no control socket");
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert_eq!(status["accounts"][0]["id"], "desk", "{status}");
    assert!(ctl(&["shutdown"]).status.success());
    let _ = child.wait();
    let log = std::fs::read_to_string(&stderr).unwrap();
    let expected = format!(
        "{}:2: key `audio.input` is locked by the administrator",
        profile.display()
    );
    assert!(log.contains(&expected), "`{expected}` not in\n{log}");
}

/// Every key of the config structs has a row in docs/config.md, under its
/// section's heading: a field added without docs fails here.
#[test]
fn every_config_key_is_documented() {
    let mut config = Config::parse(
        "[[account]]\nid = \"a\"\nusername = \"1\"\ndomain = \"x\"\n",
        Path::new("x.toml"),
    )
    .unwrap();
    config.lock.keys.push("audio".into());
    // serde_json keeps `None` fields (as null), so optional keys count too.
    let value = serde_json::to_value(&config).unwrap();
    let docs =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/config.md")).unwrap();
    let mut documented: Vec<(String, String)> = Vec::new();
    let mut section = String::new();
    for line in docs.lines() {
        if let Some(head) = line.strip_prefix("## ") {
            section = head
                .split('`')
                .nth(1)
                .unwrap_or("")
                .trim_matches(|c| c == '[' || c == ']')
                .to_string();
        } else if let Some(row) = line.strip_prefix('|') {
            let first = row.split('|').next().unwrap_or("");
            for key in first.split('`').skip(1).step_by(2) {
                documented.push((section.clone(), key.to_string()));
            }
        }
    }
    let mut missing = Vec::new();
    for (section, body) in value.as_object().unwrap() {
        let fields = match body {
            serde_json::Value::Array(items) => items[0].as_object().unwrap().clone(),
            serde_json::Value::Object(o) => o.clone(),
            other => panic!("{section} is not a section: {other}"),
        };
        for key in fields.keys() {
            if !documented.contains(&(section.clone(), key.clone())) {
                missing.push(format!("{section}.{key}"));
            }
        }
    }
    assert!(missing.is_empty(), "not in docs/config.md: {missing:?}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    /// Over random stacks: each key's effective value is the one of the
    /// last layer that set it, unless an earlier admin layer locked it, in
    /// which case it is the value of the last layer at or before the lock.
    #[test]
    fn random_layer_stacks_merge_and_lock(
        stack in proptest::collection::vec(
            (
                proptest::option::of(1u64..50),   // phone.ring_timeout_secs
                proptest::option::of(1u32..32),   // phone.lines
                proptest::option::of(any::<bool>()), // phone.dnd
                proptest::collection::vec(0usize..3, 0..3), // locks (admin layers)
            ),
            3,
        ),
    ) {
        let d = TestDir::new("layers-prop");
        let keys = ["phone.ring_timeout_secs", "phone.lines", "phone.dnd"];
        let mut files = Vec::new();
        // Expected: (value, locked) per key, following the rules above.
        let mut expect: [(Option<String>, bool); 3] = Default::default();
        for (i, (ring, lines, dnd, locks)) in stack.iter().enumerate() {
            let admin = i < 2;
            let values = [ring.map(|v| v.to_string()), lines.map(|v| v.to_string()), dnd.map(|v| v.to_string())];
            let mut text = String::from("[phone]\n");
            for (k, v) in keys.iter().zip(values.iter()) {
                if let Some(v) = v {
                    text.push_str(&format!("{} = {v}\n", k.trim_start_matches("phone.")));
                }
            }
            for (slot, v) in expect.iter_mut().zip(values.iter()) {
                if !slot.1 && v.is_some() {
                    slot.0 = v.clone();
                }
            }
            if !locks.is_empty() {
                let list: Vec<String> = locks.iter().map(|l| format!("\"{}\"", keys[*l])).collect();
                text.push_str(&format!("[lock]\nkeys = [{}]\n", list.join(", ")));
                if admin {
                    for l in locks {
                        expect[*l].1 = true;
                    }
                }
            }
            files.push(d.write(&format!("layer{i}.toml"), &text));
        }
        let c = paths(Some(&files[0]), Some(&files[1]), &files[2]).load(true).unwrap();
        let got = [
            c.phone.ring_timeout_secs.to_string(),
            c.phone.lines.to_string(),
            c.phone.dnd.to_string(),
        ];
        let defaults = ["0", "8", "false"];
        for i in 0..3 {
            let want = expect[i].0.clone().unwrap_or_else(|| defaults[i].to_string());
            prop_assert_eq!(&got[i], &want, "key {}", keys[i]);
            prop_assert_eq!(c.is_locked(keys[i]), expect[i].1, "lock of {}", keys[i]);
        }
    }
}
