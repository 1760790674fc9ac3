//! Lines: each call occupies one line (1..=N, lowest free; an outgoing
//! call takes the active line when it is free), `line N` switches between
//! them, `hangup --all` ends them all. This file also keeps the per-call
//! instants (created, answered) that the call history needs and emits
//! [`Event::History`] once a call has ended.

use std::collections::HashMap;
use std::time::Instant;

use super::Phone;
use super::account::Account;
use super::call::{Call, CallState};
use super::history::{Disposition, HistoryEntry, secs};
use super::types::{CallId, CallStatus, CommandError, Direction, Event, Output, Reply};

/// What the line/history bookkeeping knows of one call.
#[derive(Debug, Default, Clone)]
pub(super) struct LineInfo {
    pub line: Option<u8>,
    /// When the core first saw the call (INVITE sent or received).
    pub created: Option<Instant>,
    /// When it was answered (either side).
    pub answered: Option<Instant>,
    /// The user ignored it (no local alert).
    pub ignored: bool,
    /// Set by a policy that knows better than the final code (DND, forward).
    pub disposition: Option<Disposition>,
    /// Its history entry has been emitted.
    pub recorded: bool,
}

/// Per-phone line state.
#[derive(Debug, Default)]
pub(super) struct Lines {
    pub hold_on_switch: bool,
    pub info: HashMap<CallId, LineInfo>,
}

impl Phone {
    /// True when every line holds a live call.
    pub(super) fn lines_full(&self) -> bool {
        self.calls.iter().filter(|c| !c.is_ended()).count() >= usize::from(self.settings.lines)
    }

    /// An error naming the problem when a new outgoing call has no line.
    pub(super) fn check_free_line(&self) -> Result<(), CommandError> {
        if self.lines_full() {
            return Err(CommandError(format!(
                "all {} lines are busy: hang up a call first",
                self.settings.lines
            )));
        }
        Ok(())
    }

    /// Give a live call its line the first time it is seen.
    pub(super) fn assign_line(&mut self, id: CallId) {
        let Some(call) = self.calls.iter().find(|c| c.id == id) else {
            return;
        };
        if call.is_ended() || self.lines.info.get(&id).is_some_and(|i| i.line.is_some()) {
            return;
        }
        // A call that continues another takes over its line (even when all
        // lines are busy): the transferee's call placed for a REFER, an
        // incoming INVITE with Replaces (src/phone/transfer.rs).
        let continues = call.transfer.notify_to.or(call.transfer.replaces);
        if let Some(line) = continues
            .and_then(|old| self.lines.info.get(&old))
            .and_then(|i| i.line)
        {
            self.lines.info.entry(id).or_default().line = Some(line);
            return;
        }
        let used: Vec<u8> = self
            .calls
            .iter()
            .filter(|c| !c.is_ended() && c.id != id)
            .filter_map(|c| self.lines.info.get(&c.id).and_then(|i| i.line))
            .collect();
        let free = |l: &u8| !used.contains(l);
        let preferred = self
            .settings
            .active_line
            .filter(|_| call.direction == Direction::Outgoing)
            .filter(free);
        let line = preferred.or_else(|| (1..=self.settings.lines).find(free));
        self.lines.info.entry(id).or_default().line = line;
    }

    /// Fill in what the call itself does not know (line, ignored).
    pub(super) fn annotate(&self, mut status: CallStatus) -> CallStatus {
        if let Some(info) = self.lines.info.get(&status.id) {
            status.line = info.line;
            status.ignored = info.ignored;
        }
        status.conference = self.conference_of(status.id);
        status
    }

    /// Note when calls start and are answered, and emit the history
    /// entry of each call that has ended (run at the end of every input,
    /// with that input's `now`).
    pub(super) fn track_calls(&mut self, now: Instant) {
        let Phone {
            calls,
            lines,
            accounts,
            outputs,
            ..
        } = self;
        lines.info.retain(|id, _| calls.iter().any(|c| c.id == *id));
        for c in calls.iter() {
            let info = lines.info.entry(c.id).or_default();
            info.created.get_or_insert(now);
            let answered = matches!(c.state, CallState::Connected | CallState::Held)
                || c.status_code.is_some_and(|s| (200..300).contains(&s));
            if answered && info.answered.is_none() {
                info.answered = Some(now);
            }
            if c.is_ended() && !info.recorded {
                info.recorded = true;
                let entry = history_entry(c, info, accounts, now);
                tracing::info!(
                    call = c.id,
                    disposition = ?entry.disposition,
                    "call ended: {}",
                    entry.cause.as_deref().unwrap_or("")
                );
                outputs.push_back(Output::Event(Event::History(entry)));
            }
        }
    }

    /// Mark how a call ended when the final code alone would not say it.
    pub(super) fn set_disposition(&mut self, id: CallId, d: Disposition) {
        self.lines.info.entry(id).or_default().disposition = Some(d);
    }

    /// `line N`: hold the other connected call(s) (when configured), then
    /// resume the held call on that line or answer the ringing one.
    pub(super) fn switch_line(&mut self, now: Instant, line: u8) -> Result<Reply, CommandError> {
        if line == 0 || line > self.settings.lines {
            return Err(CommandError(format!(
                "no line {line}: lines are 1 to {}",
                self.settings.lines
            )));
        }
        let line_of = |c: &Call| self.lines.info.get(&c.id).and_then(|i| i.line);
        // The newest live call on the line: while a transfer or Replaces
        // completes, the old call still shares the line with its successor.
        let target = self
            .calls
            .iter()
            .rev()
            .filter(|c| !c.is_ended())
            .find(|c| line_of(c) == Some(line))
            .map(|c| (c.id, c.state, c.direction));
        if self.lines.hold_on_switch {
            let others: Vec<CallId> = self
                .calls
                .iter()
                .filter(|c| c.state == CallState::Connected)
                .filter(|c| line_of(c) != Some(line))
                .map(|c| c.id)
                .collect();
            for id in others {
                if let Err(e) = self.hold(now, Some(id), true) {
                    tracing::info!(call = id, "not held on line switch: {e}");
                }
            }
        }
        self.settings.active_line = Some(line);
        self.emit_settings();
        match target {
            Some((id, CallState::Held, _)) => {
                self.hold(now, Some(id), false)?;
            }
            Some((id, CallState::Ringing, Direction::Incoming)) => {
                self.answer(now, Some(id))?;
            }
            _ => {}
        }
        Ok(Reply::Done)
    }

    /// End every live call (hang up, cancel or reject each).
    pub(super) fn hangup_all(&mut self, now: Instant) -> Result<Reply, CommandError> {
        let ids: Vec<CallId> = self
            .calls
            .iter()
            .filter(|c| !c.is_ended() && c.state != CallState::Ending)
            .map(|c| c.id)
            .collect();
        for id in ids {
            if let Err(e) = self.hangup(now, Some(id)) {
                tracing::info!(call = id, "hangup failed: {e}");
            }
        }
        Ok(Reply::Done)
    }
}

fn history_entry(c: &Call, info: &LineInfo, accounts: &[Account], end: Instant) -> HistoryEntry {
    let created = info.created.unwrap_or(end);
    let ring_end = info.answered.unwrap_or(end);
    HistoryEntry {
        call: Some(c.id),
        direction: c.direction,
        remote: c.remote.clone(),
        account: c
            .account
            .and_then(|i| accounts.get(i))
            .map(|a| a.config.id.clone()),
        line: info.line,
        disposition: info.disposition.unwrap_or_else(|| disposition(c, info)),
        status_code: c.status_code,
        cause: c.cause.clone(),
        ring_secs: secs(ring_end.saturating_duration_since(created)),
        talk_secs: info
            .answered
            .map(|a| secs(end.saturating_duration_since(a)))
            .unwrap_or(0.0),
    }
}

/// How a call ended, from its direction, answer and final status.
fn disposition(c: &Call, info: &LineInfo) -> Disposition {
    if info.answered.is_some() {
        return Disposition::Answered;
    }
    let code = c.status_code;
    match c.direction {
        Direction::Incoming => match code {
            Some(486 | 600 | 603) => Disposition::Rejected,
            Some(302) => Disposition::Forwarded,
            Some(400 | 420 | 488 | 500) => Disposition::Failed,
            _ => Disposition::Missed,
        },
        Direction::Outgoing => match code {
            Some(486 | 600) => Disposition::Busy,
            Some(603) => Disposition::Rejected,
            Some(487) => Disposition::Cancelled,
            _ if c
                .cause
                .as_deref()
                .is_some_and(|w| w.starts_with("cancelled")) =>
            {
                Disposition::Cancelled
            }
            _ => Disposition::Failed,
        },
    }
}
