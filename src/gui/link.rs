//! The GUI's line to the core: requests go out without blocking, replies
//! and events come back through a channel the window drains each frame, and
//! the core side asks for a repaint when something arrives (so an idle
//! window does not repaint at all).

use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, channel};

use crate::api::{Reply, Request};
use crate::runtime::driver::CoreHandle;

/// Wakes the window from the core's thread.
pub type Repaint = Arc<dyn Fn() + Send + Sync>;

/// What the core sent back.
#[derive(Debug)]
pub enum FromCore {
    /// An event line (JSON), as `softline ctl events` prints it.
    Event(String),
    /// Events were dropped: read the status again.
    Lagged,
    /// The reply to a request, tagged with what it was for.
    Reply { what: Purpose, reply: Reply },
}

/// Why a request was sent (so its reply lands in the right place).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Purpose {
    Status,
    Devices,
    History,
    /// An instant message: its index in the view's message list.
    Message(usize),
    /// A user action: a failure goes to the banner, prefixed with this.
    Action(String),
}

/// A running core and the channel its answers arrive on.
pub struct CoreLink {
    handle: Option<CoreHandle>,
    tx: Sender<FromCore>,
    rx: Receiver<FromCore>,
    repaint: Repaint,
}

impl CoreLink {
    /// Connect to a running core: subscribe to its events.
    pub fn new(handle: CoreHandle, repaint: Repaint) -> CoreLink {
        let (tx, rx) = channel();
        let events_tx = tx.clone();
        let wake = repaint.clone();
        handle.subscribe(move |line| {
            let msg = match line {
                Some(l) => FromCore::Event(l),
                None => FromCore::Lagged,
            };
            let alive = events_tx.send(msg).is_ok();
            wake();
            alive
        });
        CoreLink {
            handle: Some(handle),
            tx,
            rx,
            repaint,
        }
    }

    /// Send a request; its reply arrives later as [`FromCore::Reply`].
    pub fn send(&self, what: Purpose, request: Request) {
        let Some(handle) = &self.handle else {
            let _ = self.tx.send(FromCore::Reply {
                what,
                reply: Reply::err("the phone is not running"),
            });
            return;
        };
        let tx = self.tx.clone();
        let wake = self.repaint.clone();
        handle.request(request, move |reply| {
            let _ = tx.send(FromCore::Reply { what, reply });
            wake();
        });
    }

    /// Everything that arrived since the last call (never blocks).
    pub fn drain(&self) -> Vec<FromCore> {
        self.rx.try_iter().collect()
    }

    /// The core stopped on its own (fatal error or `ctl shutdown`).
    pub fn core_stopped(&self) -> bool {
        self.handle.as_ref().is_none_or(CoreHandle::is_finished)
    }

    /// Stop the core (unregister, end calls) on a helper thread, so the
    /// window never waits; `then` runs once it has stopped.
    pub fn shutdown_in_background(
        mut self,
        then: impl FnOnce(Result<(), String>) + Send + 'static,
    ) {
        let handle = self.handle.take();
        let spawned = std::thread::Builder::new()
            .name("softline-stop".into())
            .spawn(move || {
                let r = handle.map(CoreHandle::shutdown).unwrap_or(Ok(()));
                then(r);
            });
        if let Err(e) = spawned {
            tracing::warn!("cannot stop the phone in the background: {e}");
        }
    }

    /// Stop the core and wait (used when the window closes).
    pub fn shutdown_blocking(mut self) -> Result<(), String> {
        self.handle
            .take()
            .map(CoreHandle::shutdown)
            .unwrap_or(Ok(()))
    }
}
