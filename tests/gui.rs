//! The real GUI driven through its AccessKit tree (egui_kittest), against
//! the real core it starts in-process, talking to a real Kamailio or a
//! second `softline --headless` on 127.0.0.1. Widgets are found by their
//! labels, as a screen reader would find them.
#![allow(clippy::disallowed_methods)]

#[path = "support/gui.rs"]
mod gui_support;
mod support;

use std::path::Path;
use std::time::Duration;

use egui::{Key, Modifiers};
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use serde_json::json;

use gui_support::{Gui, click, harness, has_text, options, type_into, wait_for};
use softline::gui::{GuiOptions, Page, SoftlineApp};
use support::{Kamailio, KamailioOpts, Phone, TestDir, free_udp_port};

const TEN_S: Duration = Duration::from_secs(10);

/// A user config with no account yet (the first run), on loopback, with
/// null audio (CI has no sound card).
fn base_config(port: u16) -> String {
    // The call history goes to the fixture's directory (`{dir}` for the
    // headless peers; the GUI's file is rewritten in `gui`).
    format!(
        "[sip]\nlisten_udp = \"127.0.0.1:{port}\"\n\n[audio]\ninput = \"null\"\noutput = \"null\"\n\n[media]\nrtp_port_min = {}\nrtp_port_max = {}\n\n[history]\nfile = \"{{dir}}/history.jsonl\"\n",
        30000 + (port % 1000) * 10,
        30000 + (port % 1000) * 10 + 9,
    )
}

fn gui(dir: &TestDir, config: &str) -> Gui {
    let config_path = dir.file("softline.toml");
    std::fs::write(
        &config_path,
        config.replace("{dir}", &dir.path.display().to_string()),
    )
    .unwrap();
    let mut h = harness(options(dir, config_path), |b| b.with_size([820.0, 760.0]));
    // Wait for the first status too: it adds rows to the status bar, and a
    // click aimed before the layout settles would land on the wrong widget.
    wait(&mut h, "the core's first status", |h| {
        h.state().core_ready() && h.state().vm.settings.is_some()
    });
    h
}

fn wait(h: &mut Gui, what: &str, pred: impl Fn(&Gui) -> bool) {
    wait_for(h, what, TEN_S, pred)
}

fn fill_form(h: &mut Harness<'static, SoftlineApp>, user: &str, password: &str, server: &str) {
    assert_eq!(
        h.state().page,
        Page::Account,
        "a first run opens the account form"
    );
    type_into(h, "User name", user);
    type_into(h, "Password", password);
    type_into(h, "Server", server);
    assert_eq!(
        (
            h.state().form.username.as_str(),
            h.state().form.password.as_str(),
            h.state().form.server.as_str()
        ),
        (user, password, server),
        "the form holds what was typed"
    );
    click(h, "Connect");
    wait(h, "the new config to be saved", |h| {
        std::fs::read_to_string(&h.state().options().config_path)
            .is_ok_and(|t| t.contains("[[account]]"))
    });
}

#[test]
fn first_run_form_registers_and_the_status_says_so() {
    let k = Kamailio::start(KamailioOpts::default());
    let dir = TestDir::new("gui-form");
    let mut h = gui(&dir, &base_config(free_udp_port()));
    // Validation as the agent types: a user name with a space is refused
    // beside the field, and nothing is written.
    type_into(&mut h, "User name", "ali ce");
    assert!(has_text(&h, "` ` is not allowed in a user name"));
    h.state_mut().form.username.clear();
    fill_form(&mut h, "alice", "secret", &k.domain());
    wait(&mut h, "registered", |h| has_text(h, "Registered over UDP"));
    // The form went to the user's file, with the other sections kept.
    let written = std::fs::read_to_string(dir.file("softline.toml")).unwrap();
    assert!(written.contains("username = \"alice\""), "{written}");
    assert!(written.contains("input = \"null\""), "{written}");
    assert_eq!(k.bindings("alice").len(), 1, "{}", k.ul_dump());
    h.state_mut().shutdown();
}

#[test]
fn a_wrong_password_reads_as_plain_words() {
    let k = Kamailio::start(KamailioOpts::default());
    let dir = TestDir::new("gui-badpw");
    let mut h = gui(&dir, &base_config(free_udp_port()));
    fill_form(&mut h, "alice", "not-the-secret", &k.domain());
    wait(&mut h, "the failure", |h| has_text(h, "Password rejected"));
    assert!(has_text(&h, "check the user name and password"));
    h.state_mut().shutdown();
}

#[test]
fn an_empty_form_explains_every_missing_field_and_keeps_what_was_typed() {
    let dir = TestDir::new("gui-empty");
    let mut h = gui(&dir, &base_config(free_udp_port()));
    type_into(&mut h, "User name", "alice");
    click(&mut h, "Connect");
    assert!(has_text(&h, "Enter the SIP password"));
    assert!(has_text(&h, "Enter the server"));
    assert!(has_text(&h, "Fix the fields marked in red first."));
    assert_eq!(h.state().form.username, "alice");
    // Nothing reached the file.
    let written = std::fs::read_to_string(dir.file("softline.toml")).unwrap();
    assert!(!written.contains("[[account]]"), "{written}");
    h.state_mut().shutdown();
}

/// A second phone, headless, that the GUI calls or that calls the GUI.
fn peer(port: u16) -> Phone {
    Phone::start(&base_config(port))
}

fn peer_state(p: &Phone) -> String {
    p.status()["calls"][0]["state"]
        .as_str()
        .unwrap_or("none")
        .to_string()
}

#[test]
fn dial_hold_resume_and_hang_up_from_the_call_tab() {
    let pb = free_udp_port();
    let b = peer(pb);
    let dir = TestDir::new("gui-dial");
    let mut h = gui(&dir, &base_config(free_udp_port()));
    click(&mut h, "Phone");
    // A pasted number with junk is refused beside the field, text kept.
    type_into(&mut h, "Number", "12;3");
    click(&mut h, "Call");
    assert!(has_text(&h, "`;` cannot be dialled"));
    assert_eq!(h.state().dial, "12;3");
    assert!(h.state().vm.calls.is_empty());

    h.state_mut().dial.clear();
    type_into(&mut h, "Number", &format!("sip:b@127.0.0.1:{pb}"));
    click(&mut h, "Call");
    wait(&mut h, "a tab for the call", |h| {
        h.state().vm.calls.len() == 1 && has_text(h, "1 · b ·")
    });
    b.wait_for(|s| s["calls"][0]["state"] == "ringing", TEN_S)
        .unwrap();
    b.cmd(json!({"cmd": "answer"}));
    wait(&mut h, "connected", |h| has_text(h, "Connected"));
    // Media flows (silence from null audio): the tab shows the estimate.
    wait(&mut h, "the quality estimate", |h| has_text(h, "MOS 4."));
    click(&mut h, "Hold");
    wait(&mut h, "on hold", |h| has_text(h, "On hold"));
    b.wait_for(|s| s["calls"][0]["remote_hold"] == true, TEN_S)
        .unwrap();
    click(&mut h, "Resume");
    wait(&mut h, "resumed", |h| has_text(h, "Connected"));
    b.wait_for(|s| s["calls"][0]["remote_hold"] == false, TEN_S)
        .unwrap();
    // Ctrl+M mutes (local only): the tab says so.
    h.key_press_modifiers(Modifiers::CTRL, Key::M);
    wait(&mut h, "muted", |h| has_text(h, "Muted"));
    click(&mut h, "Hang up");
    wait(&mut h, "ended", |h| has_text(h, "Ended"));
    b.wait_for(
        |s| {
            s["calls"].as_array().is_some_and(|c| c.is_empty()) || s["calls"][0]["state"] == "ended"
        },
        TEN_S,
    )
    .unwrap();
    h.state_mut().shutdown();
}

#[test]
fn incoming_call_alerts_and_ctrl_enter_answers() {
    let pa = free_udp_port();
    let dir = TestDir::new("gui-incoming");
    let mut h = gui(&dir, &base_config(pa));
    let b = peer(free_udp_port());
    b.cmd(json!({"cmd": "call", "target": format!("sip:agent@127.0.0.1:{pa}")}));
    wait(&mut h, "the alert", |h| has_text(h, "Incoming call from"));
    assert_eq!(
        h.state().page,
        Page::Phone,
        "the alert brings the phone page to the front (it opened on the account form)"
    );
    h.key_press_modifiers(Modifiers::CTRL, Key::Enter);
    wait(&mut h, "answered", |h| {
        h.state()
            .vm
            .calls
            .first()
            .is_some_and(|c| c.state == "connected")
    });
    b.wait_for(|s| s["calls"][0]["state"] == "connected", TEN_S)
        .unwrap();
    assert_eq!(peer_state(&b), "connected");
    // The far end hangs up: the tab shows how it ended.
    b.cmd(json!({"cmd": "hangup"}));
    wait(&mut h, "ended", |h| has_text(h, "Ended"));
    h.state_mut().shutdown();
}

#[test]
fn a_config_error_is_shown_in_the_window_with_its_line() {
    let dir = TestDir::new("gui-badconf");
    let config_path = dir.file("softline.toml");
    std::fs::write(&config_path, "[sip]\nlisten_udp = 5\n").unwrap();
    let mut h = harness(options(&dir, config_path.clone()), |b| {
        b.with_size([820.0, 400.0])
    });
    h.step();
    let err = h.state().core_error().unwrap_or_default().to_string();
    assert!(err.contains("The configuration has an error"), "{err}");
    assert!(err.contains(":2"), "names the line: {err}");
    assert!(has_text(&h, "The configuration has an error"));
    assert!(
        Path::new(&config_path).exists(),
        "the file is left as it was"
    );
}

#[test]
fn dnd_turns_callers_away_and_history_calls_back() {
    let pa = free_udp_port();
    let dir = TestDir::new("gui-dnd");
    let mut h = gui(&dir, &base_config(pa));
    let pb = free_udp_port();
    let b = peer(pb);
    click(&mut h, "Phone");
    wait(&mut h, "the DND switch", |h| has_text(h, "Do not disturb"));
    click(&mut h, "Do not disturb");
    wait(&mut h, "DND on", |h| {
        h.state().vm.settings.as_ref().is_some_and(|s| s.dnd)
    });
    b.cmd(json!({"cmd": "call", "target": format!("sip:agent@127.0.0.1:{pa}")}));
    let ended = b
        .wait_for(
            |s| {
                s["calls"].as_array().is_some_and(|c| c.is_empty())
                    || s["calls"][0]["state"] == "ended"
            },
            TEN_S,
        )
        .unwrap();
    // No alert ever reached the window.
    for _ in 0..10 {
        h.step();
    }
    assert!(!has_text(&h, "Incoming call from"), "{ended}");
    // History shows the refused call; "Call back" dials its caller.
    click(&mut h, "History");
    wait(&mut h, "the history list", |h| has_text(h, "Call back"));
    assert!(has_text(&h, "busy") || has_text(&h, "rejected"));
    click(&mut h, "Call back");
    wait(&mut h, "the call back", |h| !h.state().vm.calls.is_empty());
    assert_eq!(h.state().page, Page::Phone);
    b.wait_for(
        |s| {
            s["calls"]
                .as_array()
                .is_some_and(|l| l.iter().any(|x| x["state"] == "ringing"))
        },
        TEN_S,
    )
    .unwrap();
    h.state_mut().shutdown();
}

#[test]
fn blind_transfer_from_the_call_tab_connects_the_other_two() {
    let pa = free_udp_port();
    let dir = TestDir::new("gui-xfer");
    let mut h = gui(&dir, &base_config(pa));
    let (pb, pc) = (free_udp_port(), free_udp_port());
    let b = peer(pb);
    let c = peer(pc);
    b.cmd(json!({"cmd": "call", "target": format!("sip:agent@127.0.0.1:{pa}")}));
    wait(&mut h, "the alert", |h| has_text(h, "Incoming call from"));
    // The alert's Answer (the call tab has one too).
    h.get_all_by_label("Answer").next().unwrap().click();
    h.run_steps(2);
    wait(&mut h, "connected", |h| has_text(h, "Connected"));
    type_into(&mut h, "Transfer to", &format!("sip:c@127.0.0.1:{pc}"));
    click(&mut h, "Blind transfer");
    c.wait_for(|s| s["calls"][0]["state"] == "ringing", TEN_S)
        .unwrap();
    c.cmd(json!({"cmd": "answer"}));
    b.wait_for(
        |s| {
            s["calls"].as_array().is_some_and(|l| {
                l.iter().any(|x| {
                    x["state"] == "connected"
                        && x["remote"]
                            .as_str()
                            .is_some_and(|r| r.contains(&pc.to_string()))
                })
            })
        },
        TEN_S,
    )
    .unwrap();
    wait(&mut h, "our call ended as transferred", |h| {
        h.state().vm.calls.first().is_some_and(|x| !x.is_live())
    });
    h.state_mut().shutdown();
}

#[test]
fn messages_arrive_and_go_out() {
    let pa = free_udp_port();
    let dir = TestDir::new("gui-msg");
    let mut h = gui(&dir, &base_config(pa));
    let pb = free_udp_port();
    let b = peer(pb);
    b.cmd(json!({"cmd": "message", "target": format!("sip:agent@127.0.0.1:{pa}"), "text": "break at three"}));
    wait(&mut h, "the unread count", |h| has_text(h, "Messages (1)"));
    click(&mut h, "Messages (1)");
    assert!(has_text(&h, "break at three"));
    type_into(&mut h, "To", &format!("sip:b@127.0.0.1:{pb}"));
    type_into(&mut h, "Message", "on my way");
    click(&mut h, "Send");
    wait(&mut h, "delivered", |h| has_text(h, "(delivered)"));
    h.state_mut().shutdown();
}

/// Every control a user can act on has a name a screen reader can say, on
/// every page, with a call up (so the call tab's controls are there too).
#[test]
fn every_control_has_an_accessible_name_on_every_page() {
    let pa = free_udp_port();
    let dir = TestDir::new("gui-a11y");
    let mut h = gui(&dir, &base_config(pa));
    h.check_accessibility();
    let b = peer(free_udp_port());
    b.cmd(json!({"cmd": "call", "target": format!("sip:agent@127.0.0.1:{pa}")}));
    wait(&mut h, "the alert", |h| has_text(h, "Incoming call from"));
    h.check_accessibility();
    h.key_press_modifiers(Modifiers::CTRL, Key::Enter);
    wait(&mut h, "connected", |h| has_text(h, "Connected"));
    click(&mut h, "Keypad");
    h.check_accessibility();
    for page in [
        "History", "Messages", "Account", "Settings", "Help", "Phone",
    ] {
        click(&mut h, page);
        h.check_accessibility();
    }
    // Advanced account fields too.
    click(&mut h, "Account");
    click(&mut h, "Advanced");
    h.check_accessibility();
    assert!(h.query_by_label("TLS CA file").is_some());
    h.state_mut().shutdown();
}

#[test]
fn settings_change_codec_order_and_processing_and_restart_the_phone() {
    let dir = TestDir::new("gui-settings");
    let mut h = gui(&dir, &base_config(free_udp_port()));
    click(&mut h, "Settings");
    // The device list arrives later and pushes the form down: wait for it.
    wait(&mut h, "the device list", |h| h.state().devices_listed());
    h.run_steps(2);
    click(&mut h, "Move PCMU up");
    click(&mut h, "Echo cancellation");
    click(&mut h, "G722");
    click(&mut h, "Apply");
    wait(&mut h, "the restart", |h| {
        has_text(h, "Saved; the phone restarted")
    });
    let written = std::fs::read_to_string(dir.file("softline.toml")).unwrap();
    let c = softline::config::Config::parse(&written, Path::new("x")).unwrap();
    assert_eq!(c.media.codecs, ["opus", "PCMU", "PCMA"], "{written}");
    assert!(!c.audio.echo_cancellation);
    assert_eq!(c.audio.input, "null", "untouched keys stay");
    wait(&mut h, "the restarted core", |h| {
        h.state().core_ready() && h.state().vm.settings.is_some()
    });
    h.state_mut().shutdown();
}

/// An admin's system file provides the account and locks its server and
/// the codecs: the form shows them read-only, the agent can still set the
/// password (in their own file), and a locked change is refused unsaved.
#[test]
fn admin_locked_keys_are_read_only_and_never_written() {
    let k = Kamailio::start(KamailioOpts::default());
    let dir = TestDir::new("gui-locks");
    let system = dir.file("system.toml");
    std::fs::write(
        &system,
        format!(
            "[[account]]\nid = \"desk\"\nusername = \"alice\"\ndomain = \"{}\"\n\n[media]\ncodecs = [\"PCMA\", \"PCMU\"]\n\n[lock]\nkeys = [\"account.*.domain\", \"media.codecs\", \"phone.dnd\"]\n",
            k.domain()
        ),
    )
    .unwrap();
    let config_path = dir.file("softline.toml");
    std::fs::write(
        &config_path,
        base_config(free_udp_port()).replace("{dir}", &dir.path.display().to_string()),
    )
    .unwrap();
    let opts = GuiOptions {
        system_config: Some(system),
        ..options(&dir, config_path.clone())
    };
    let mut h = harness(opts, |b| b.with_size([820.0, 760.0]));
    wait(&mut h, "the core", |h| {
        h.state().core_ready() && h.state().vm.settings.is_some()
    });
    // Do not disturb is locked too: the Phone page draws it disabled.
    click(&mut h, "Phone");
    h.run();
    {
        use egui_kittest::kittest::NodeT;
        let dnd = h.get_by_label("Do not disturb");
        assert!(
            dnd.accesskit_node().is_disabled(),
            "a locked DND is read-only"
        );
    }
    click(&mut h, "Account");
    assert!(has_text(&h, "locked by your administrator"));
    assert_eq!(
        h.state().form.server,
        k.domain(),
        "filled from the admin's file"
    );
    // The agent types the password (not locked) and connects: it registers.
    type_into(&mut h, "Password", "secret");
    click(&mut h, "Connect");
    wait(&mut h, "registered", |h| has_text(h, "Registered over UDP"));
    let written = std::fs::read_to_string(&config_path).unwrap();
    assert!(
        written.contains("id = \"desk\""),
        "merges with the admin's account: {written}"
    );
    // A change to a locked key (forced past the read-only field) is refused
    // and nothing is written.
    h.state_mut().form.server = "evil.example.com".into();
    click(&mut h, "Connect");
    wait(&mut h, "the refusal", |h| {
        has_text(h, "Your administrator has locked")
    });
    assert_eq!(std::fs::read_to_string(&config_path).unwrap(), written);
    h.state_mut().shutdown();
}

/// Two lines merged into a local conference from the call tab, then split.
#[test]
fn two_lines_merge_into_a_conference_and_split() {
    let dir = TestDir::new("gui-conf");
    let mut h = gui(&dir, &base_config(free_udp_port()));
    let (pb, pc) = (free_udp_port(), free_udp_port());
    let (b, c) = (peer(pb), peer(pc));
    click(&mut h, "Phone");
    for (p, port) in [(&b, pb), (&c, pc)] {
        h.state_mut().dial = format!("sip:x@127.0.0.1:{port}");
        click(&mut h, "Call");
        p.wait_for(|s| s["calls"][0]["state"] == "ringing", TEN_S)
            .unwrap();
        p.cmd(json!({"cmd": "answer"}));
        p.wait_for(|s| s["calls"][0]["state"] == "connected", TEN_S)
            .unwrap();
    }
    wait(&mut h, "two calls up", |h| {
        h.state().vm.calls.iter().filter(|c| c.is_live()).count() == 2
            && h.state()
                .vm
                .calls
                .iter()
                .all(|c| matches!(c.state.as_str(), "connected" | "held"))
    });
    let first = h.state().vm.calls[0].id;
    h.state_mut().vm.selected = Some(first);
    h.run_steps(2);
    h.query_all_by_label_contains("Conference with")
        .next()
        .expect("a merge button for the other line")
        .click();
    h.run_steps(2);
    wait(&mut h, "the conference", |h| {
        h.state()
            .vm
            .calls
            .iter()
            .filter(|c| c.conference.is_some())
            .count()
            == 2
    });
    assert!(has_text(&h, "In conference"));
    click(&mut h, "Split conference");
    wait(&mut h, "the split", |h| {
        h.state().vm.calls.iter().all(|c| c.conference.is_none())
    });
    h.state_mut().shutdown();
}

/// The built-in audio test from Settings shows moving meters: a tone on
/// the "microphone" (a looped WAV file) moves the meter well above silence
/// (−90 dBFS). The tone is −15 dBFS RMS; the −40 dBFS bar leaves room for noise
/// suppression, which once ran on file inputs too and took a steady tone
/// down to about −28 dBFS (it is now for sound-card microphones only).
#[test]
fn the_audio_test_shows_live_meters() {
    use softline::audio::wav::Wav;
    use softline::media::tone::sine;
    let dir = TestDir::new("gui-meters");
    let tone = dir.file("tone.wav");
    let w = Wav {
        sample_rate: 16000,
        samples: sine(500.0, 16000, 8000.0, 16000 * 2),
    };
    std::fs::write(&tone, w.to_bytes()).unwrap();
    let config = base_config(free_udp_port()).replace(
        "input = \"null\"",
        &format!("input = \"loop:{}\"", tone.display()),
    );
    let mut h = gui(&dir, &config);
    click(&mut h, "Settings");
    wait(&mut h, "the device list", |h| h.state().devices_listed());
    h.run_steps(2);
    click(&mut h, "Audio test (10 s)");
    wait(&mut h, "the meters", |h| {
        h.state()
            .vm
            .audio_test_levels
            .is_some_and(|l| l.mic.rms_dbfs > -40.0)
    });
    assert!(has_text(&h, "Microphone level"));
    h.state_mut().shutdown();
}
