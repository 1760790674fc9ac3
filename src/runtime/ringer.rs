//! The ringer: while an incoming call rings (and no call is connected, where
//! a call-waiting tone is the polite signal instead), play a ring cadence or
//! the configured ringtone on the **ring device**, which may differ from the
//! call device (ring on the speakers, talk on the headset).
//!
//! It runs as its own task: the sink is opened off the network thread (a
//! sound device may take a while), then 20 ms frames are written at real
//! time pace until the ring stops. File and null sinks work the same way,
//! so tests can listen to the ring.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::audio::{self, AudioSpec};

/// Sample rate the ring is made at.
const RATE: u32 = 16_000;
/// One frame: 20 ms.
const FRAME: usize = (RATE / 50) as usize;
/// The built-in cadence: 2 s of 440 + 480 Hz, then 4 s of silence.
const ON_FRAMES: usize = 100;
const CYCLE_FRAMES: usize = 300;
/// Ring tone amplitude per component (about −12 dBFS for the pair).
const AMPLITUDE: f64 = 4_000.0;

/// What rings and where.
#[derive(Debug, Clone, PartialEq)]
pub struct RingConfig {
    /// The ring device (`[audio] ring`); `None`: do not ring.
    pub device: Option<AudioSpec>,
    /// A WAV file to loop instead of the built-in cadence.
    pub ringtone: Option<std::path::PathBuf>,
}

/// The running ring, if any.
pub struct Ringer {
    config: RingConfig,
    stop: Option<Arc<AtomicBool>>,
}

impl Ringer {
    pub fn new(config: RingConfig) -> Ringer {
        Ringer { config, stop: None }
    }

    pub fn is_ringing(&self) -> bool {
        self.stop.is_some()
    }

    /// Ring or be quiet, as the calls now ask.
    pub fn set(&mut self, ring: bool) {
        match (ring, self.stop.is_some()) {
            (true, false) => self.start(),
            (false, true) => self.stop(),
            _ => {}
        }
    }

    fn start(&mut self) {
        let Some(device) = self.config.device.clone() else {
            return;
        };
        let stop = Arc::new(AtomicBool::new(false));
        self.stop = Some(stop.clone());
        let ringtone = self.config.ringtone.clone();
        tokio::spawn(async move {
            let opened = tokio::task::spawn_blocking(move || {
                let (sink, err) = audio::open_sink(&device, RATE);
                if let Some(e) = err {
                    tracing::warn!("ring device: {e}");
                }
                let tone = ringtone.map(|p| {
                    let (src, err) = audio::open_source(
                        &AudioSpec::File {
                            path: p,
                            looped: true,
                        },
                        RATE,
                    );
                    if let Some(e) = err {
                        tracing::warn!("ringtone: {e}: using the built-in ring");
                    }
                    src
                });
                (sink, tone)
            })
            .await;
            let Ok((mut sink, mut tone)) = opened else {
                return;
            };
            let mut tick = tokio::time::interval(Duration::from_millis(20));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut frame = vec![0i16; FRAME];
            let mut n = 0usize;
            let mut phase = 0usize;
            while !stop.load(Ordering::Relaxed) {
                tick.tick().await;
                match tone.as_mut() {
                    // A ringtone file, resampled by its source to RATE.
                    Some(src) if src.sample_rate() == RATE => src.read(&mut frame),
                    _ => {
                        cadence_frame(n, &mut phase, &mut frame);
                    }
                }
                n += 1;
                if let Err(e) = sink.write(&frame) {
                    tracing::warn!("ring device: {e}");
                    break;
                }
            }
            let _ = sink.finish();
        });
    }

    fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            stop.store(true, Ordering::Relaxed);
        }
    }
}

impl Drop for Ringer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Frame `n` of the built-in cadence; `phase` carries the sines across
/// frames so the tone has no clicks.
fn cadence_frame(n: usize, phase: &mut usize, out: &mut [i16]) {
    if n % CYCLE_FRAMES >= ON_FRAMES {
        out.fill(0);
        *phase = 0;
        return;
    }
    let rate = f64::from(RATE);
    for s in out.iter_mut() {
        let t = *phase as f64 / rate;
        let v = AMPLITUDE
            * ((2.0 * std::f64::consts::PI * 440.0 * t).sin()
                + (2.0 * std::f64::consts::PI * 480.0 * t).sin());
        *s = v.round() as i16;
        *phase += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::tone::tone_share;

    #[test]
    fn the_cadence_rings_two_seconds_then_rests_four() {
        let mut phase = 0;
        let mut frame = vec![0i16; FRAME];
        let mut on = Vec::new();
        for n in 0..ON_FRAMES {
            cadence_frame(n, &mut phase, &mut frame);
            on.extend_from_slice(&frame);
        }
        let both = tone_share(&on, RATE, 440.0) + tone_share(&on, RATE, 480.0);
        assert!(both > 0.9, "440+480 Hz carry the ring: {both}");
        cadence_frame(ON_FRAMES, &mut phase, &mut frame);
        assert!(frame.iter().all(|&s| s == 0), "then silence");
        cadence_frame(CYCLE_FRAMES, &mut phase, &mut frame);
        assert!(frame.iter().any(|&s| s != 0), "and again after 6 s");
    }
}
