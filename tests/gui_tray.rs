//! The tray icon as a desktop's tray host sees it: a private D-Bus session
//! bus (dbus-daemon), the real window (kittest) with its core and its tray
//! item, first without a tray host (nothing breaks, no close-to-tray), then
//! with a minimal StatusNotifierWatcher owned by the test (the desktop's
//! part: it only records registrations) that the waiting item registers
//! with. The test reads the item's
//! Title/ToolTip/Status and its dbusmenu layout over D-Bus, clicks "Do not
//! disturb" as a tray host would, and checks the core turned DND on (ctl
//! status) and the menu's checkmark followed. Its own binary, as it points
//! the process's session bus at the private one.
#![cfg(target_os = "linux")]
#![allow(clippy::disallowed_methods)]
// For one `set_var` before any other thread of this binary reads the
// environment (see the SAFETY note below).
#![allow(unsafe_code)]

#[path = "support/dbus.rs"]
mod dbus_support;
#[path = "support/gui.rs"]
mod gui_support;
mod support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use zbus::zvariant::{OwnedValue, Value};

use dbus_support::PrivateBus;
use gui_support::{Gui, harness, options};
use softline::api::Request;
use support::{TestDir, free_udp_port};

/// The desktop's side: a StatusNotifierWatcher that records who registers.
struct Watcher {
    items: Arc<Mutex<Vec<String>>>,
}

#[zbus::interface(name = "org.kde.StatusNotifierWatcher")]
impl Watcher {
    fn register_status_notifier_item(&self, service: &str) {
        self.items.lock().unwrap().push(service.to_string());
    }
    fn register_status_notifier_host(&self, _service: &str) {}
    #[zbus(property)]
    fn registered_status_notifier_items(&self) -> Vec<String> {
        self.items.lock().unwrap().clone()
    }
    #[zbus(property)]
    fn is_status_notifier_host_registered(&self) -> bool {
        true
    }
    #[zbus(property)]
    fn protocol_version(&self) -> i32 {
        0
    }
}

/// The item's ToolTip: (icon name, icon pixmaps, title, description).
type ToolTip = (String, Vec<(i32, i32, Vec<u8>)>, String, String);

/// One dbusmenu node: (id, properties, children).
type Node = (i32, HashMap<String, OwnedValue>, Vec<OwnedValue>);

fn label(props: &HashMap<String, OwnedValue>) -> String {
    props
        .get("label")
        .and_then(|v| String::try_from(v.try_clone().ok()?).ok())
        .unwrap_or_default()
}

fn toggle_state(props: &HashMap<String, OwnedValue>) -> Option<i32> {
    props
        .get("toggle-state")
        .and_then(|v| i32::try_from(v.try_clone().ok()?).ok())
}

/// The menu's top-level items as (id, label, toggle-state).
async fn menu_items(menu: &zbus::Proxy<'_>) -> Vec<(i32, String, Option<i32>)> {
    let (_rev, root): (u32, Node) = menu
        .call("GetLayout", &(0i32, -1i32, Vec::<String>::new()))
        .await
        .expect("GetLayout");
    root.2
        .into_iter()
        .map(|child| {
            let node: Node = Node::try_from(child).expect("a dbusmenu node");
            (node.0, label(&node.1), toggle_state(&node.1))
        })
        .collect()
}

/// Own `org.kde.StatusNotifierWatcher` on a runtime thread of its own for
/// the rest of the test.
fn start_watcher(items: Arc<Mutex<Vec<String>>>) {
    dbus_support::serve(
        "org.kde.StatusNotifierWatcher",
        "/StatusNotifierWatcher",
        Watcher { items },
        "the watcher",
    );
}

#[test]
fn the_tray_item_shows_status_and_its_menu_drives_the_phone() {
    let dir = TestDir::new("gui-tray");
    let bus = PrivateBus::start();
    let addr = bus.addr.clone();
    // SAFETY: this binary holds this one test, and nothing has started a
    // thread that reads the environment yet (the GUI, its core, its tray and
    // the watcher all start below).
    unsafe { std::env::set_var("DBUS_SESSION_BUS_ADDRESS", &addr) };

    let port = free_udp_port();
    let path = dir.file("softline.toml");
    std::fs::write(
        &path,
        format!(
            "[sip]\nlisten_udp = \"127.0.0.1:{port}\"\n\n[audio]\ninput = \"null\"\noutput = \"null\"\n\n[history]\nfile = \"{}/history.jsonl\"\n",
            dir.path.display()
        ),
    )
    .unwrap();
    let mut h = harness(options(&dir, path), |b| b);
    let step_until = |h: &mut Gui, what: &str, f: &mut dyn FnMut(&mut Gui) -> bool| {
        let deadline = Instant::now() + Duration::from_secs(15);
        while !f(h) {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            h.step();
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    step_until(&mut h, "the core", &mut |h| h.state().vm.settings.is_some());
    // No tray host yet: nothing breaks, the window does not close to a
    // tray nobody shows.
    h.state_mut().start_tray();
    for _ in 0..25 {
        h.step();
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!h.state().tray_host_present());
    assert!(!h.state().close_to_tray());
    assert!(h.state().core_ready());

    // The desktop's tray host starts: the waiting item registers with it.
    let items = Arc::new(Mutex::new(Vec::<String>::new()));
    start_watcher(items.clone());
    step_until(&mut h, "the item's registration", &mut |_| {
        !items.lock().unwrap().is_empty()
    });
    let service = items.lock().unwrap()[0].clone();
    assert!(
        service.starts_with("org.kde.StatusNotifierItem-"),
        "registered as {service}"
    );
    step_until(&mut h, "the tray host to be seen", &mut |h| {
        h.state().tray_host_present()
    });
    // With a tray host, closing the window hides it in the tray by default.
    assert!(h.state().close_to_tray());

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let conn = rt
        .block_on(zbus::Connection::session())
        .expect("a client on the private bus");
    let proxy = |path: &'static str, iface: &'static str| {
        rt.block_on(
            zbus::proxy::Builder::<zbus::Proxy>::new(&conn)
                .destination(service.clone())
                .unwrap()
                .path(path)
                .unwrap()
                .interface(iface)
                .unwrap()
                .cache_properties(zbus::proxy::CacheProperties::No)
                .build(),
        )
        .unwrap()
    };
    let item = proxy("/StatusNotifierItem", "org.kde.StatusNotifierItem");
    let menu = proxy("/MenuBar", "com.canonical.dbusmenu");
    let title = || -> String { rt.block_on(item.get_property("Title")).unwrap() };
    // No account: the title says so, the tooltip too; the item is Active.
    step_until(&mut h, "the title", &mut |_| {
        title() == "Softline — No account"
    });
    let tooltip: ToolTip = rt.block_on(item.get_property("ToolTip")).unwrap();
    assert_eq!(tooltip.2, "Softline — No account");
    assert_eq!(tooltip.3, "No account");
    let status: String = rt.block_on(item.get_property("Status")).unwrap();
    assert_eq!(status, "Active");
    let category: String = rt.block_on(item.get_property("Category")).unwrap();
    assert_eq!(category, "Communications");
    let menu_path: zbus::zvariant::OwnedObjectPath =
        rt.block_on(item.get_property("Menu")).unwrap();
    assert_eq!(menu_path.as_str(), "/MenuBar");

    let entries = rt.block_on(menu_items(&menu));
    let labels: Vec<&str> = entries.iter().map(|e| e.1.as_str()).collect();
    assert_eq!(
        labels,
        ["Hide window", "Do not disturb", "", "Quit"],
        "{entries:?}"
    );
    let (dnd_id, _, dnd_state) = entries[1].clone();
    assert_eq!(dnd_state, Some(0), "DND starts off");

    // A tray host's click on "Do not disturb".
    rt.block_on(menu.call::<_, _, ()>("Event", &(dnd_id, "clicked", Value::from(0i32), 0u32)))
        .expect("Event clicked");
    let socket = h.state().options().ctl_socket.clone();
    step_until(&mut h, "DND on in the core", &mut |_| {
        softline::api::client::request(&socket, &Request::Status)
            .ok()
            .and_then(|r| r.result)
            .and_then(|v| v.get("settings")?.get("dnd")?.as_bool())
            == Some(true)
    });
    step_until(&mut h, "the checkmark", &mut |_| {
        rt.block_on(menu_items(&menu))
            .iter()
            .find(|e| e.1 == "Do not disturb")
            .and_then(|e| e.2)
            == Some(1)
    });
    step_until(&mut h, "the DND title", &mut |_| {
        title() == "Softline — No account (do not disturb)"
    });

    // Show/Hide follows the window: hidden from the tray, the menu offers Show.
    let hide_id = entries[0].0;
    rt.block_on(menu.call::<_, _, ()>("Event", &(hide_id, "clicked", Value::from(0i32), 0u32)))
        .expect("Event clicked");
    step_until(&mut h, "Show window", &mut |_| {
        rt.block_on(menu_items(&menu))
            .first()
            .is_some_and(|e| e.1 == "Show window")
    });
    h.state_mut().shutdown();
}
