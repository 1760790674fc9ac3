//! The control channel's server side, on the runtime's thread. Requests go
//! to the driver through a channel and come back with a reply; `events`
//! subscribers get each event as one JSON line.

use std::path::Path;

use interprocess::local_socket::{
    ListenerOptions,
    tokio::{Listener, Stream, prelude::*},
};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::{broadcast, mpsc, oneshot};

use super::{Reply, Request};

/// A request with the way back to its client.
pub struct CtlMessage {
    pub request: Request,
    pub reply: oneshot::Sender<Reply>,
}

/// Bind the control socket (replacing a stale socket file).
pub fn bind(path: &Path) -> std::io::Result<Listener> {
    let name = super::socket_name(path)?;
    ListenerOptions::new()
        .name(name)
        .try_overwrite(true)
        .create_tokio()
}

/// Accept clients forever.
pub async fn serve(
    listener: Listener,
    to_core: mpsc::Sender<CtlMessage>,
    events: broadcast::Sender<String>,
) {
    loop {
        match listener.accept().await {
            Ok(conn) => {
                let to_core = to_core.clone();
                let events = events.subscribe();
                tokio::spawn(async move {
                    if let Err(e) = handle(conn, to_core, events).await {
                        tracing::debug!("control client: {e}");
                    }
                });
            }
            Err(e) => tracing::warn!("control socket accept failed: {e}"),
        }
    }
}

async fn handle(
    conn: Stream,
    to_core: mpsc::Sender<CtlMessage>,
    mut events: broadcast::Receiver<String>,
) -> std::io::Result<()> {
    let (recv, mut send) = tokio::io::split(conn);
    let mut lines = BufReader::new(recv).lines();
    while let Some(line) = lines.next_line().await? {
        if line.trim().is_empty() {
            continue;
        }
        let request: Request = match serde_json::from_str(&line) {
            Ok(r) => r,
            Err(e) => {
                write_line(&mut send, &Reply::err(format!("bad request: {e}"))).await?;
                continue;
            }
        };
        if request == Request::Events {
            write_line(&mut send, &Reply::ok(serde_json::json!("streaming"))).await?;
            loop {
                match events.recv().await {
                    Ok(ev) => {
                        send.write_all(ev.as_bytes()).await?;
                        send.write_all(b"\n").await?;
                    }
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        let note = serde_json::json!({"event": "lagged", "missed": n});
                        send.write_all(format!("{note}\n").as_bytes()).await?;
                    }
                    Err(broadcast::error::RecvError::Closed) => return Ok(()),
                }
            }
        }
        let (tx, rx) = oneshot::channel();
        if to_core
            .send(CtlMessage { request, reply: tx })
            .await
            .is_err()
        {
            write_line(&mut send, &Reply::err("the phone is shutting down")).await?;
            return Ok(());
        }
        let reply = rx
            .await
            .unwrap_or_else(|_| Reply::err("the phone is shutting down"));
        write_line(&mut send, &reply).await?;
    }
    Ok(())
}

async fn write_line(send: &mut (impl AsyncWriteExt + Unpin), reply: &Reply) -> std::io::Result<()> {
    let mut text = serde_json::to_string(reply).unwrap_or_else(|_| "{\"ok\":false}".into());
    text.push('\n');
    send.write_all(text.as_bytes()).await
}
