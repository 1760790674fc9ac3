//! `softline ctl`: a blocking client of the control channel.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;

use interprocess::local_socket::{Stream, prelude::*};

use super::{Reply, Request};

/// Send one request and read the reply.
pub fn request(socket: &Path, req: &Request) -> Result<Reply, String> {
    let stream = connect(socket)?;
    let (mut reader, mut writer) = (BufReader::new(&stream), &stream);
    send(&mut writer, req)?;
    read_reply(&mut reader)
}

/// Send `events` and call `each` for every event line until the phone
/// closes the channel or `each` returns false.
pub fn stream_events(socket: &Path, mut each: impl FnMut(&str) -> bool) -> Result<(), String> {
    let stream = connect(socket)?;
    let (mut reader, mut writer) = (BufReader::new(&stream), &stream);
    send(&mut writer, &Request::Events)?;
    let reply = read_reply(&mut reader)?;
    if !reply.ok {
        return Err(reply.error.unwrap_or_default());
    }
    let mut line = String::new();
    loop {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) => return Ok(()),
            Ok(_) => {
                if !each(line.trim_end()) {
                    return Ok(());
                }
            }
            Err(e) => return Err(format!("reading events: {e}")),
        }
    }
}

fn connect(socket: &Path) -> Result<Stream, String> {
    let name = super::socket_name(socket).map_err(|e| format!("bad socket name: {e}"))?;
    let stream = Stream::connect(name).map_err(|e| {
        format!(
            "cannot reach the phone at {} ({e}); is `softline --headless` running?",
            socket.display()
        )
    })?;
    Ok(stream)
}

fn send(writer: &mut impl Write, req: &Request) -> Result<(), String> {
    let mut line = serde_json::to_string(req).map_err(|e| e.to_string())?;
    line.push('\n');
    writer
        .write_all(line.as_bytes())
        .map_err(|e| format!("sending to the phone: {e}"))
}

fn read_reply(reader: &mut impl BufRead) -> Result<Reply, String> {
    let mut line = String::new();
    reader
        .read_line(&mut line)
        .map_err(|e| format!("reading the reply: {e}"))?;
    if line.is_empty() {
        return Err("the phone closed the channel without a reply".into());
    }
    serde_json::from_str(&line).map_err(|e| format!("bad reply from the phone: {e}"))
}
