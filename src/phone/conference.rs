//! Local three-way conference and the local tones the core decides on.
//!
//! `conference A B` joins two calls (connected or held; a held one is
//! resumed with a re-INVITE): the runtime is told
//! ([`Output::Conference`]) to mix so that each party hears the other two.
//! `split CALL` undoes it: `CALL` stays connected, the other call is held,
//! each call has its own audio again ([`Output::Split`]). A conference
//! also ends when either call ends.
//!
//! Tones for the agent only, never sent to the far end
//! ([`Output::PlayTone`]): call waiting (a call rings while another is
//! connected: one burst at once and every 10 s while it rings) and the
//! auto-answer zip tone (per account `auto_answer_beep`, default on).

use std::collections::HashSet;
use std::time::{Duration, Instant};

use super::Phone;
use super::call::CallState;
use super::types::{CallId, CommandError, Direction, Output, Reply};

/// How often the call-waiting tone repeats while the second call rings.
pub const CALL_WAITING_REPEAT: Duration = Duration::from_secs(10);

/// A tone played to the local user only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    /// A second call is ringing (burst of 440 Hz).
    CallWaiting,
    /// The call was answered automatically (zip tone: two 1 kHz beeps).
    AutoAnswer,
}

/// One local conference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conf {
    pub id: u32,
    /// Its first call: the runtime's audio endpoints stay with it.
    pub a: CallId,
    pub b: CallId,
}

/// Conference and tone state of the phone.
#[derive(Debug, Default)]
pub(super) struct State {
    pub current: Option<Conf>,
    next_id: u32,
    /// When the call-waiting tone plays next (while a call waits).
    waiting_tone_at: Option<Instant>,
    /// Auto-answered calls whose zip tone was asked for.
    beeped: HashSet<CallId>,
}

impl Phone {
    /// `conference A B`.
    pub(super) fn conference(
        &mut self,
        now: Instant,
        a: CallId,
        b: CallId,
    ) -> Result<Reply, CommandError> {
        if a == b {
            return Err(CommandError(
                "a conference needs two different calls".into(),
            ));
        }
        if let Some(c) = self.conf.current {
            return Err(CommandError(format!(
                "calls {} and {} are already in conference {}: split it first",
                c.a, c.b, c.id
            )));
        }
        for id in [a, b] {
            let call = self
                .calls
                .iter()
                .find(|c| c.id == id)
                .ok_or_else(|| CommandError(format!("no call {id}")))?;
            if !matches!(call.state, CallState::Connected | CallState::Held) || call.is_ended() {
                return Err(CommandError(
                    format!(
                        "call {id} is {:?}: only connected or held calls can be joined",
                        call.state
                    )
                    .to_lowercase(),
                ));
            }
            if call.reinvite.is_some() {
                return Err(CommandError(format!(
                    "call {id}: a re-INVITE is in progress, try again"
                )));
            }
        }
        for id in [a, b] {
            let held = self
                .calls
                .iter()
                .any(|c| c.id == id && c.state == CallState::Held);
            if held {
                self.send_reinvite(now, id, false)?;
            }
        }
        self.conf.next_id += 1;
        let conf = Conf {
            id: self.conf.next_id,
            a,
            b,
        };
        self.conf.current = Some(conf);
        tracing::info!(conference = conf.id, a, b, "calls joined in a conference");
        self.outputs.push_back(Output::Conference { a, b });
        self.emit_call(a);
        self.emit_call(b);
        Ok(Reply::Done)
    }

    /// `split [CALL]`: end the conference; `call` (default: its first)
    /// stays connected, the other call is put on hold.
    pub(super) fn split(
        &mut self,
        now: Instant,
        call: Option<CallId>,
    ) -> Result<Reply, CommandError> {
        let Some(conf) = self.conf.current else {
            return Err(CommandError("no conference to split".into()));
        };
        let keep = call.unwrap_or(conf.a);
        let other = match keep {
            k if k == conf.a => conf.b,
            k if k == conf.b => conf.a,
            k => {
                return Err(CommandError(format!(
                    "call {k} is not in the conference (calls {} and {})",
                    conf.a, conf.b
                )));
            }
        };
        self.dissolve(conf);
        let connected = self
            .calls
            .iter()
            .any(|c| c.id == other && c.state == CallState::Connected && c.reinvite.is_none());
        if connected && let Err(e) = self.send_reinvite(now, other, true) {
            tracing::info!(call = other, "not held on split: {e}");
        }
        Ok(Reply::Done)
    }

    fn dissolve(&mut self, conf: Conf) {
        self.conf.current = None;
        tracing::info!(conference = conf.id, "conference split");
        self.outputs.push_back(Output::Split {
            a: conf.a,
            b: conf.b,
        });
        self.emit_call(conf.a);
        self.emit_call(conf.b);
    }

    /// The conference a call is in (for its status).
    pub(super) fn conference_of(&self, id: CallId) -> Option<u32> {
        self.conf
            .current
            .filter(|c| c.a == id || c.b == id)
            .map(|c| c.id)
    }

    /// When [`Phone::conference_update`] must run next.
    pub(super) fn conference_timeout(&self) -> Option<Instant> {
        self.conf.waiting_tone_at
    }

    /// Run at the end of every input: end a conference whose call ended,
    /// ask for the call-waiting and zip tones.
    pub(super) fn conference_update(&mut self, now: Instant) {
        if let Some(conf) = self.conf.current {
            // Hung up (ending) counts as gone: its media stops soon.
            let live = |id| {
                self.calls.iter().any(|c| {
                    c.id == id
                        && !c.is_ended()
                        && matches!(c.state, CallState::Connected | CallState::Held)
                })
            };
            if !live(conf.a) || !live(conf.b) {
                self.dissolve(conf);
            }
        }
        // The call that owns the local audio: the conference's first call,
        // else a connected call (the active line's first).
        let active_line = self.settings.active_line;
        let connected: Vec<CallId> = self
            .calls
            .iter()
            .filter(|c| c.state == CallState::Connected && !c.is_ended())
            .map(|c| c.id)
            .collect();
        let target = self.conf.current.map(|c| c.a).or_else(|| {
            connected
                .iter()
                .copied()
                .find(|id| {
                    active_line.is_some()
                        && self.lines.info.get(id).and_then(|i| i.line) == active_line
                })
                .or(connected.first().copied())
        });
        let waiting = self.calls.iter().any(|c| {
            c.direction == Direction::Incoming
                && c.state == CallState::Ringing
                && !self.lines.info.get(&c.id).is_some_and(|i| i.ignored)
        });
        match target.filter(|_| waiting) {
            Some(call) => {
                if self.conf.waiting_tone_at.is_none_or(|at| at <= now) {
                    self.outputs.push_back(Output::PlayTone {
                        call,
                        tone: Tone::CallWaiting,
                    });
                    self.conf.waiting_tone_at = Some(now + CALL_WAITING_REPEAT);
                }
            }
            None => self.conf.waiting_tone_at = None,
        }
        let calls = &self.calls;
        self.conf
            .beeped
            .retain(|id| calls.iter().any(|c| c.id == *id));
        let zips: Vec<CallId> = self
            .calls
            .iter()
            .filter(|c| c.state == CallState::Connected && c.auto_answered.is_some())
            // Answered because it replaced a call (RFC 3891): not auto-answer.
            .filter(|c| c.transfer.replaces.is_none())
            .filter(|c| !self.conf.beeped.contains(&c.id))
            .filter(|c| {
                c.account
                    .and_then(|i| self.accounts.get(i))
                    .is_none_or(|a| a.config.auto_answer_beep)
            })
            .map(|c| c.id)
            .collect();
        for call in zips {
            self.conf.beeped.insert(call);
            self.outputs.push_back(Output::PlayTone {
                call,
                tone: Tone::AutoAnswer,
            });
        }
    }
}
