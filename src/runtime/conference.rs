//! The media side of a local conference: the link between the two calls'
//! media tasks. The first call's task (the *host*) keeps the local audio
//! endpoints and mixes ([`Mix3`]); the second call's task (the *guest*)
//! gives up its endpoints, sends what the host hands it (microphone + the
//! host's far end) and hands back what its far end says. Frames cross
//! between the tasks through two [`Pipe`]s (resampled when the calls'
//! codec rates differ). The mutexes are only ever taken by these two
//! tokio tasks, once per frame each: never by an audio device callback.

use std::sync::{Arc, Mutex};

use crate::media::mixer::{Mix3, Pipe};

/// Audio primed in a pipe before it plays, and the most it keeps.
const PRIME_MS: u32 = 40;
const MAX_MS: u32 = 200;

/// One side of a conference link, owned by a call's media task.
pub struct ConfLink {
    host: bool,
    /// Host → guest: what the guest's far end is sent.
    to_guest: Arc<Mutex<Pipe>>,
    /// Guest → host: what the guest's far end said.
    to_host: Arc<Mutex<Pipe>>,
    mix: Mix3,
    frame: Vec<i16>,
}

/// A linked pair: (host side, guest side).
pub fn link_pair() -> (ConfLink, ConfLink) {
    let to_guest = Arc::new(Mutex::new(Pipe::new(PRIME_MS, MAX_MS)));
    let to_host = Arc::new(Mutex::new(Pipe::new(PRIME_MS, MAX_MS)));
    let side = |host| ConfLink {
        host,
        to_guest: to_guest.clone(),
        to_host: to_host.clone(),
        mix: Mix3::default(),
        frame: Vec::with_capacity(960),
    };
    (side(true), side(false))
}

impl ConfLink {
    /// The guest gives up the local audio endpoints.
    pub fn is_guest(&self) -> bool {
        !self.host
    }

    /// The other side's task has ended (its call ended): this side goes
    /// back to its own audio.
    pub fn peer_gone(&self) -> bool {
        Arc::strong_count(&self.to_guest) < 2
    }

    /// One frame at `rate`. Host: `send` holds the microphone and becomes
    /// what this call's far end is sent (microphone + guest's far end);
    /// `play` holds this call's far end and becomes what the speaker plays
    /// (both far ends). Guest: `send` becomes what the host handed over;
    /// `play` (its far end) goes to the host and the guest plays silence.
    pub fn tick(&mut self, send: &mut Vec<i16>, play: &mut Vec<i16>, rate: u32) {
        let n = send.len();
        self.frame.clear();
        self.frame.resize(n, 0);
        if self.host {
            if let Ok(mut p) = self.to_host.lock() {
                p.pull(&mut self.frame, rate);
            }
            self.mix.process(send, play, &self.frame);
            if let Ok(mut p) = self.to_guest.lock() {
                p.push(&self.mix.to_b, rate);
            }
            send.clear();
            send.extend_from_slice(&self.mix.to_a);
            play.clear();
            play.extend_from_slice(&self.mix.local);
        } else {
            if let Ok(mut p) = self.to_host.lock() {
                p.push(play, rate);
            }
            if let Ok(mut p) = self.to_guest.lock() {
                p.pull(&mut self.frame, rate);
            }
            send.clear();
            send.extend_from_slice(&self.frame);
            play.fill(0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::tone::{sine, tone_share};

    #[test]
    fn host_and_guest_exchange_what_each_far_end_must_hear() {
        // Host call at 8 kHz, guest call at 16 kHz, 20 ms frames.
        let (mut host, mut guest) = link_pair();
        let (mic, far_a) = (
            sine(700.0, 8000, 6000.0, 8000),
            sine(1100.0, 8000, 6000.0, 8000),
        );
        let far_b = sine(1700.0, 16000, 6000.0, 16000);
        let (mut sent_a, mut sent_b, mut played) = (Vec::new(), Vec::new(), Vec::new());
        for i in 0..50 {
            let mut send = far_b[i * 320..(i + 1) * 320].to_vec();
            let mut play = send.clone();
            send.fill(0); // the guest's own microphone is not used
            guest.tick(&mut send, &mut play, 16000);
            assert!(play.iter().all(|&s| s == 0));
            sent_b.extend_from_slice(&send);
            let mut send = mic[i * 160..(i + 1) * 160].to_vec();
            let mut play = far_a[i * 160..(i + 1) * 160].to_vec();
            host.tick(&mut send, &mut play, 8000);
            sent_a.extend_from_slice(&send);
            played.extend_from_slice(&play);
        }
        let tail = |v: &[i16]| v[v.len() / 2..].to_vec();
        let (a, b, p) = (tail(&sent_a), tail(&sent_b), tail(&played));
        for (what, v, rate, hears, not) in [
            ("to A", &a, 8000, [700.0, 1700.0], 1100.0),
            ("to B", &b, 16000, [700.0, 1100.0], 1700.0),
            ("speaker", &p, 8000, [1100.0, 1700.0], 700.0),
        ] {
            for f in hears {
                let s = tone_share(v, rate, f);
                assert!(s > 0.3, "{what}: {f} Hz share {s}");
            }
            assert!(tone_share(v, rate, not) < 0.02, "{what} hears {not} Hz");
        }
        assert!(!host.peer_gone());
        drop(guest);
        assert!(host.peer_gone());
    }
}
