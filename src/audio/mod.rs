//! Audio endpoints of a call: where the microphone signal comes from and
//! where the far end's voice goes. Backends: `null` (silence in, discard
//! out), `file:PATH.wav` (play a file once, or write what the phone plays
//! out, clocked like a device by the media loop), `loop:PATH.wav` (play a
//! file over and over), `default` or a device name (cpal, see `device`;
//! without a usable device they fall back to `null` with a warning the
//! status shows).

pub mod device;
pub mod policy;
#[cfg(target_os = "linux")]
pub mod pulse;
pub mod wav;

use std::io;
use std::path::PathBuf;

use wav::{Wav, WavWriter};

/// What an `[audio] input/output` value names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AudioSpec {
    Default,
    Device(String),
    File { path: PathBuf, looped: bool },
    Null,
}

impl AudioSpec {
    /// A sound card (the default one or a named one), as opposed to a file
    /// or `null`: only there do sound and noise go through the air.
    pub fn is_sound_device(&self) -> bool {
        matches!(self, AudioSpec::Default | AudioSpec::Device(_))
    }

    pub fn parse(s: &str) -> Result<AudioSpec, String> {
        let s = s.trim();
        if s.is_empty() {
            return Err("empty audio device name (use `default`, `null`, `file:PATH.wav`)".into());
        }
        Ok(match s {
            "default" => AudioSpec::Default,
            "null" => AudioSpec::Null,
            _ => {
                if let Some(p) = s.strip_prefix("file:") {
                    AudioSpec::File {
                        path: PathBuf::from(p),
                        looped: false,
                    }
                } else if let Some(p) = s.strip_prefix("loop:") {
                    AudioSpec::File {
                        path: PathBuf::from(p),
                        looped: true,
                    }
                } else {
                    AudioSpec::Device(s.to_string())
                }
            }
        })
    }
}

/// Produces microphone-side PCM, mono, at its own rate.
pub trait AudioSource: Send {
    fn sample_rate(&self) -> u32;
    /// Fill `out` completely (silence when there is nothing to play).
    fn read(&mut self, out: &mut [i16]);
    /// Why the endpoint stopped working (a device unplugged), if it did.
    fn failure(&self) -> Option<String> {
        None
    }
    /// A sound device's bridge counters (underruns, drift steps); `None`
    /// for files and `null`.
    fn device_stats(&self) -> Option<device::DeviceStats> {
        None
    }
}

/// Consumes the PCM the phone plays out, mono, at its own rate.
pub trait AudioSink: Send {
    fn sample_rate(&self) -> u32;
    fn write(&mut self, pcm: &[i16]) -> io::Result<()>;
    fn finish(&mut self) -> io::Result<()>;
    /// Why the endpoint stopped working (a device unplugged), if it did.
    fn failure(&self) -> Option<String> {
        None
    }
    /// A sound device's bridge counters (underruns, drift steps); `None`
    /// for files and `null`.
    fn device_stats(&self) -> Option<device::DeviceStats> {
        None
    }
}

/// Silence at a given rate.
pub struct NullSource(pub u32);

impl AudioSource for NullSource {
    fn sample_rate(&self) -> u32 {
        self.0
    }
    fn read(&mut self, out: &mut [i16]) {
        out.fill(0);
    }
}

/// Discards everything.
pub struct NullSink(pub u32);

impl AudioSink for NullSink {
    fn sample_rate(&self) -> u32 {
        self.0
    }
    fn write(&mut self, _pcm: &[i16]) -> io::Result<()> {
        Ok(())
    }
    fn finish(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A WAV file played once (then silence) or looped.
pub struct FileSource {
    wav: Wav,
    pos: usize,
    looped: bool,
}

impl FileSource {
    pub fn new(wav: Wav, looped: bool) -> FileSource {
        FileSource {
            wav,
            pos: 0,
            looped,
        }
    }
}

impl AudioSource for FileSource {
    fn sample_rate(&self) -> u32 {
        self.wav.sample_rate
    }
    fn read(&mut self, out: &mut [i16]) {
        let n = self.wav.samples.len();
        for o in out.iter_mut() {
            if self.pos >= n {
                if self.looped && n > 0 {
                    self.pos = 0;
                } else {
                    *o = 0;
                    continue;
                }
            }
            *o = self.wav.samples.get(self.pos).copied().unwrap_or(0);
            self.pos += 1;
        }
    }
}

/// Writes the played-out signal to a WAV file.
pub struct FileSink(WavWriter, u32);

impl AudioSink for FileSink {
    fn sample_rate(&self) -> u32 {
        self.1
    }
    fn write(&mut self, pcm: &[i16]) -> io::Result<()> {
        self.0.write(pcm)
    }
    fn finish(&mut self) -> io::Result<()> {
        self.0.finish()
    }
}

/// Why an audio endpoint could not be opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AudioError {
    #[error("cannot read the audio file {path}: {why}")]
    File { path: String, why: String },
    #[error("no sound-device backend in this build: `{0}` plays as silence")]
    NoDeviceBackend(String),
    #[error("no sound device for `{wanted}` ({why}): silence instead")]
    NoDevice { wanted: String, why: String },
    #[error("sound device `{wanted}` not found: using `{using}`")]
    DeviceMissing { wanted: String, using: String },
    #[error("sound device `{name}` could not be opened ({why}): silence instead")]
    DeviceFailed { name: String, why: String },
}

/// Open the microphone side. `rate` is used where the backend has no rate
/// of its own (null). A device that cannot be opened gives a `null` source
/// and the reason, so a call still proceeds with a visible warning.
pub fn open_source(spec: &AudioSpec, rate: u32) -> (Box<dyn AudioSource>, Option<AudioError>) {
    match spec {
        AudioSpec::Null => (Box::new(NullSource(rate)), None),
        AudioSpec::File { path, looped } => match Wav::read(path) {
            Ok(w) => (Box::new(FileSource::new(w, *looped)), None),
            Err(e) => (
                Box::new(NullSource(rate)),
                Some(AudioError::File {
                    path: path.display().to_string(),
                    why: e.to_string(),
                }),
            ),
        },
        AudioSpec::Default => device::open_device_source(None, rate),
        AudioSpec::Device(d) => device::open_device_source(Some(d), rate),
    }
}

/// Open the playout side at `rate` (files are written at that rate).
pub fn open_sink(spec: &AudioSpec, rate: u32) -> (Box<dyn AudioSink>, Option<AudioError>) {
    match spec {
        AudioSpec::Null => (Box::new(NullSink(rate)), None),
        AudioSpec::File { path, .. } => match WavWriter::create(path, rate) {
            Ok(w) => (Box::new(FileSink(w, rate)), None),
            Err(e) => (
                Box::new(NullSink(rate)),
                Some(AudioError::File {
                    path: path.display().to_string(),
                    why: e.to_string(),
                }),
            ),
        },
        AudioSpec::Default => device::open_device_sink(None, rate),
        AudioSpec::Device(d) => device::open_device_sink(Some(d), rate),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs() {
        assert_eq!(AudioSpec::parse("null"), Ok(AudioSpec::Null));
        assert_eq!(AudioSpec::parse("default"), Ok(AudioSpec::Default));
        assert_eq!(
            AudioSpec::parse("file:/tmp/a.wav"),
            Ok(AudioSpec::File {
                path: "/tmp/a.wav".into(),
                looped: false
            })
        );
        assert_eq!(
            AudioSpec::parse("loop:/tmp/a.wav"),
            Ok(AudioSpec::File {
                path: "/tmp/a.wav".into(),
                looped: true
            })
        );
        assert_eq!(
            AudioSpec::parse("Jabra Evolve"),
            Ok(AudioSpec::Device("Jabra Evolve".into()))
        );
        assert!(AudioSpec::parse(" ").is_err());
    }

    #[test]
    fn file_source_once_and_looped() {
        let wav = Wav {
            sample_rate: 8000,
            samples: vec![1, 2, 3],
        };
        let mut once = FileSource::new(wav.clone(), false);
        let mut out = [9i16; 5];
        once.read(&mut out);
        assert_eq!(out, [1, 2, 3, 0, 0]);
        let mut looped = FileSource::new(wav, true);
        looped.read(&mut out);
        assert_eq!(out, [1, 2, 3, 1, 2]);
    }

    #[test]
    fn missing_file_is_a_visible_error_not_a_crash() {
        let (mut src, err) = open_source(
            &AudioSpec::File {
                path: "/nonexistent/x.wav".into(),
                looped: false,
            },
            8000,
        );
        assert!(matches!(err, Some(AudioError::File { .. })));
        let mut out = [1i16; 4];
        src.read(&mut out);
        assert_eq!(out, [0; 4]);
    }
}
