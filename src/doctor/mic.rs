//! (g) Microphone: the configured input delivers signal above the noise
//! floor within a few seconds (or a clear "silent / not permitted /
//! missing" state), and the speaker and ring devices are present.
//!
//! The input is opened exactly as a call opens it (`audio::open_source`),
//! so the doctor hears what the far end would hear.

use std::time::{Duration, Instant};

use super::CheckResult;
use crate::audio::device::{DeviceInfo, list_devices, match_device};
use crate::audio::{self, AudioError, AudioSpec};
use crate::config::AudioConfig;
use crate::media::tone::rms_dbfs;

/// Peak magnitude at or below which the input counts as digital silence
/// (a muted or blocked input delivers exact zeros, some drivers ±1).
const SILENCE_PEAK: i16 = 2;
/// Below this RMS the microphone works but is very quiet (gain down).
const QUIET_DBFS: f64 = -60.0;
/// How much signal a device must deliver before the check stops early.
const ENOUGH: Duration = Duration::from_millis(500);

/// Level of what the input delivered.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Level {
    pub rms_dbfs: f64,
    pub peak_dbfs: f64,
    pub peak: i16,
    pub samples: usize,
}

/// RMS and peak of `samples`.
pub fn level(samples: &[i16]) -> Level {
    let peak = samples
        .iter()
        .map(|s| s.unsigned_abs())
        .max()
        .unwrap_or(0)
        .min(i16::MAX as u16) as i16;
    let peak_dbfs = if peak == 0 {
        f64::NEG_INFINITY
    } else {
        20.0 * (f64::from(peak) / 32768.0).log10()
    };
    Level {
        rms_dbfs: rms_dbfs(samples),
        peak_dbfs,
        peak,
        samples: samples.len(),
    }
}

fn db(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.1} dBFS")
    } else {
        "-inf dBFS (digital silence)".into()
    }
}

/// Names of the present devices in one direction.
fn names(devices: &[DeviceInfo], input: bool) -> Vec<String> {
    devices
        .iter()
        .filter(|d| if input { d.is_input } else { d.is_output })
        .map(|d| d.name.clone())
        .collect()
}

fn present_list(names: &[String]) -> String {
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

/// Whether an output endpoint (speaker, ring) is present: `Err(evidence)`
/// naming it and the present devices when not.
fn output_present(
    what: &str,
    spec: &AudioSpec,
    devices: &mut Option<Vec<DeviceInfo>>,
) -> Result<String, String> {
    let outputs =
        |d: &mut Option<Vec<DeviceInfo>>| names(d.get_or_insert_with(list_devices), false);
    match spec {
        AudioSpec::Null => Ok(format!("{what}: `null` (nothing is played)")),
        AudioSpec::File { path, .. } => Ok(format!("{what}: file {}", path.display())),
        AudioSpec::Default => {
            let present = outputs(devices);
            if present.is_empty() {
                Err(format!(
                    "{what}: `default`, but this computer has no sound output device"
                ))
            } else {
                Ok(format!(
                    "{what}: the default device ({} present)",
                    present.len()
                ))
            }
        }
        AudioSpec::Device(name) => {
            let present = outputs(devices);
            match match_device(&present, name) {
                Some(i) => Ok(format!(
                    "{what}: `{name}` present ({})",
                    present.get(i).map(String::as_str).unwrap_or(name)
                )),
                None => Err(format!(
                    "{what}: device `{name}` not found; present: {}",
                    present_list(&present)
                )),
            }
        }
    }
}

/// Run the check: listen for at most `listen`.
pub(super) fn check(audio_cfg: &AudioConfig, listen: Duration) -> CheckResult {
    const NAME: &str = "microphone";
    let mut devices: Option<Vec<DeviceInfo>> = None;
    let mut lines = Vec::new();
    // Speaker and ring first: presence only.
    let output = AudioSpec::parse(&audio_cfg.output).unwrap_or(AudioSpec::Null);
    let mut missing_output = None;
    match output_present("speaker", &output, &mut devices) {
        Ok(l) => lines.push(l),
        Err(l) => {
            lines.push(l.clone());
            missing_output = Some(l);
        }
    }
    if let Some(ring) = audio_cfg.ring_device() {
        match output_present("ring", &ring, &mut devices) {
            Ok(l) => lines.push(l),
            Err(l) => {
                lines.push(l.clone());
                missing_output.get_or_insert(l);
            }
        }
    }

    let input = match AudioSpec::parse(&audio_cfg.input) {
        Ok(s) => s,
        Err(e) => {
            return CheckResult::failed(
                NAME,
                format!("[audio] input: {e}"),
                "Set [audio] input to `default`, a device name or `file:PATH.wav`.",
            );
        }
    };
    let mic_line = match &input {
        AudioSpec::Null => {
            lines.insert(
                0,
                "microphone: `null` (the far end hears silence): not tested".into(),
            );
            return match missing_output {
                Some(_) => failed_output(lines),
                None => CheckResult::skipped(NAME, lines.join("\n")),
            };
        }
        AudioSpec::File { path, looped } => format!(
            "microphone: {} {}",
            if *looped { "looped file" } else { "file" },
            path.display()
        ),
        AudioSpec::Default => "microphone: the default input device".into(),
        AudioSpec::Device(name) => format!("microphone: device `{name}`"),
    };
    lines.insert(0, mic_line);

    // A named device must be there (the phone would fall back to another).
    if let AudioSpec::Device(name) = &input {
        let present = names(devices.get_or_insert_with(list_devices), true);
        if match_device(&present, name).is_none() {
            lines.push(format!(
                "device `{name}` not found; present inputs: {}",
                present_list(&present)
            ));
            return CheckResult::failed(
                NAME,
                lines.join("\n"),
                format!(
                    "Plug in `{name}`, or set [audio] input to one of the present devices \
                     (or `default`)."
                ),
            );
        }
    }

    let (mut source, err) = audio::open_source(&input, 8000);
    if let Some(e) = err {
        let advice = match &e {
            AudioError::File { .. } => {
                "Fix the path in [audio] input (the file must be a 16-bit PCM WAV).".to_string()
            }
            AudioError::DeviceMissing { wanted, .. } => {
                format!("Plug in `{wanted}` or choose a present device for [audio] input.")
            }
            _ => "Connect a microphone (headset), or check that the system lets Softline use it \
                  (OS privacy settings)."
                .to_string(),
        };
        let present = names(devices.get_or_insert_with(list_devices), true);
        lines.push(format!("cannot open it: {e}"));
        lines.push(format!("present inputs: {}", present_list(&present)));
        return CheckResult::failed(NAME, lines.join("\n"), advice);
    }

    // Listen. Files are read at once (they are clocked by their reader);
    // a device delivers in real time: poll every 20 ms, stop early once it
    // has delivered enough signal.
    let rate = source.sample_rate().max(1);
    let want = (u64::from(rate) * listen.as_millis() as u64 / 1000) as usize;
    let mut got: Vec<i16> = Vec::with_capacity(want);
    if matches!(input, AudioSpec::File { .. }) {
        got.resize(want, 0);
        source.read(&mut got);
    } else {
        let chunk = (rate / 50) as usize;
        let enough = (u64::from(rate) * ENOUGH.as_millis() as u64 / 1000) as usize;
        let started = Instant::now();
        let mut buf = vec![0i16; chunk];
        let mut loud = 0usize;
        while started.elapsed() < listen {
            std::thread::sleep(Duration::from_millis(20));
            source.read(&mut buf);
            if buf.iter().any(|s| s.unsigned_abs() > SILENCE_PEAK as u16) {
                loud += buf.len();
            }
            got.extend_from_slice(&buf);
            if loud >= enough {
                break;
            }
            if let Some(why) = source.failure() {
                lines.push(format!("the device failed: {why}"));
                return CheckResult::failed(
                    NAME,
                    lines.join("\n"),
                    "Reconnect the microphone (or choose another) and try again.",
                );
            }
        }
    }
    let l = level(&got);
    let secs = got.len() as f64 / f64::from(rate);
    if l.peak <= SILENCE_PEAK {
        lines.push(format!(
            "listened {secs:.1} s: microphone delivers silence (peak {})",
            db(l.peak_dbfs)
        ));
        return CheckResult::failed(
            NAME,
            lines.join("\n"),
            "The microphone delivers silence: it is muted, not permitted (OS privacy \
             settings: allow microphone access) or the wrong device: unmute it or pick another \
             [audio] input.",
        );
    }
    lines.push(format!(
        "listened {secs:.1} s: level {} RMS, peak {}",
        db(l.rms_dbfs),
        db(l.peak_dbfs)
    ));
    if let Some(_missing) = missing_output {
        return failed_output(lines);
    }
    let result = CheckResult::passed(NAME, lines.join("\n"));
    if l.rms_dbfs < QUIET_DBFS {
        result.with_advice(
            "The microphone works but is very quiet: raise its input gain in the system's \
             sound settings.",
        )
    } else {
        result
    }
}

fn failed_output(lines: Vec<String>) -> CheckResult {
    CheckResult::failed(
        "microphone",
        lines.join("\n"),
        "Connect the speaker/headset named in [audio] output (or ring), or set it to one of the \
         present devices (or `default`).",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_of_tone_and_silence() {
        let tone = crate::media::tone::sine(1000.0, 8000, 16384.0, 8000);
        let l = level(&tone);
        assert!((l.peak_dbfs + 6.02).abs() < 0.1, "{l:?}");
        assert!((l.rms_dbfs + 9.03).abs() < 0.1, "{l:?}");
        let l = level(&[0, 1, -1, 0]);
        assert_eq!(l.peak, 1);
        assert!(l.peak <= SILENCE_PEAK);
        assert_eq!(level(&[i16::MIN]).peak, i16::MAX);
        assert_eq!(level(&[]).peak_dbfs, f64::NEG_INFINITY);
    }
}
