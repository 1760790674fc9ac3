//! WAV files (RIFF, PCM 16-bit): reading speech/tone files for the file
//! audio source and writing what the phone plays out.

use std::fs::File;
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::Path;

/// A decoded WAV file: mono samples (stereo is averaged) and their rate.
#[derive(Debug, Clone, PartialEq)]
pub struct Wav {
    pub sample_rate: u32,
    pub samples: Vec<i16>,
}

fn bad(why: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, why.into())
}

fn u16_at(b: &[u8], i: usize) -> Option<u16> {
    Some(u16::from_le_bytes([*b.get(i)?, *b.get(i + 1)?]))
}

fn u32_at(b: &[u8], i: usize) -> Option<u32> {
    Some(u32::from_le_bytes([
        *b.get(i)?,
        *b.get(i + 1)?,
        *b.get(i + 2)?,
        *b.get(i + 3)?,
    ]))
}

impl Wav {
    /// Parse WAV bytes: PCM 16-bit, 1 or 2 channels, any rate. A data
    /// chunk whose size is 0 or runs past the end (a file still being
    /// written) is read to the end of the bytes. Stereo is averaged.
    pub fn parse(b: &[u8]) -> io::Result<Wav> {
        let (sample_rate, channels) = parse_channels(b)?;
        let samples = match channels.as_slice() {
            [mono] => mono.clone(),
            [l, r] => l
                .iter()
                .zip(r)
                .map(|(a, b)| ((i32::from(*a) + i32::from(*b)) / 2) as i16)
                .collect(),
            _ => Vec::new(),
        };
        Ok(Wav {
            sample_rate,
            samples,
        })
    }

    pub fn read(path: &Path) -> io::Result<Wav> {
        let mut bytes = Vec::new();
        File::open(path)?.read_to_end(&mut bytes)?;
        Wav::parse(&bytes).map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))
    }

    /// The bytes of a mono 16-bit WAV file.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = header(self.sample_rate, (self.samples.len() * 2) as u32).to_vec();
        for s in &self.samples {
            out.extend_from_slice(&s.to_le_bytes());
        }
        out
    }
}

/// The rate and the separate channels (1 or 2) of 16-bit PCM WAV bytes.
pub fn parse_channels(b: &[u8]) -> io::Result<(u32, Vec<Vec<i16>>)> {
    if b.get(0..4) != Some(b"RIFF") || b.get(8..12) != Some(b"WAVE") {
        return Err(bad("not a RIFF/WAVE file"));
    }
    let mut pos = 12;
    let mut format: Option<(u16, u16, u32, u16)> = None;
    while pos + 8 <= b.len() {
        let id = b.get(pos..pos + 4).unwrap_or_default();
        let size = u32_at(b, pos + 4).unwrap_or(0) as usize;
        let body = pos + 8;
        if id == b"fmt " {
            let tag = u16_at(b, body).ok_or_else(|| bad("short fmt chunk"))?;
            let channels = u16_at(b, body + 2).ok_or_else(|| bad("short fmt chunk"))?;
            let rate = u32_at(b, body + 4).ok_or_else(|| bad("short fmt chunk"))?;
            let bits = u16_at(b, body + 14).ok_or_else(|| bad("short fmt chunk"))?;
            format = Some((tag, channels, rate, bits));
        } else if id == b"data" {
            let (tag, channels, rate, bits) = format.ok_or_else(|| bad("data before fmt"))?;
            // 1 = PCM, 0xFFFE = extensible (assumed PCM).
            if !(tag == 1 || tag == 0xFFFE) || bits != 16 {
                return Err(bad(format!(
                    "only 16-bit PCM is supported (format {tag}, {bits} bits)"
                )));
            }
            if !(1..=2).contains(&channels) || rate == 0 {
                return Err(bad(format!(
                    "{channels} channels at {rate} Hz is not supported"
                )));
            }
            let end = if size == 0 || body + size > b.len() {
                b.len()
            } else {
                body + size
            };
            let data = b.get(body..end).unwrap_or_default();
            let ch = channels as usize;
            let mut out = vec![Vec::with_capacity(data.len() / (2 * ch)); ch];
            for frame in data.chunks_exact(2 * ch) {
                for (c, s) in frame.chunks_exact(2).enumerate() {
                    if let Some(v) = out.get_mut(c) {
                        v.push(i16::from_le_bytes([s[0], s[1]]));
                    }
                }
            }
            return Ok((rate, out));
        }
        pos = body + size + (size & 1);
    }
    Err(bad("no data chunk"))
}

fn header(rate: u32, data_len: u32) -> [u8; 44] {
    header_ch(rate, 1, data_len)
}

fn header_ch(rate: u32, channels: u16, data_len: u32) -> [u8; 44] {
    let mut h = [0u8; 44];
    h[0..4].copy_from_slice(b"RIFF");
    h[4..8].copy_from_slice(&(36 + data_len).to_le_bytes());
    h[8..12].copy_from_slice(b"WAVE");
    h[12..16].copy_from_slice(b"fmt ");
    h[16..20].copy_from_slice(&16u32.to_le_bytes());
    h[20..22].copy_from_slice(&1u16.to_le_bytes());
    h[22..24].copy_from_slice(&channels.to_le_bytes());
    h[24..28].copy_from_slice(&rate.to_le_bytes());
    h[28..32].copy_from_slice(&(rate * 2 * u32::from(channels)).to_le_bytes());
    h[32..34].copy_from_slice(&(2 * channels).to_le_bytes());
    h[34..36].copy_from_slice(&16u16.to_le_bytes());
    h[36..40].copy_from_slice(b"data");
    h[40..44].copy_from_slice(&data_len.to_le_bytes());
    h
}

/// Streams mono 16-bit samples into a WAV file, keeping the header's sizes
/// right every second of audio and at the end, so the file is readable
/// while it grows and after a crash.
pub struct WavWriter {
    file: BufWriter<File>,
    rate: u32,
    channels: u16,
    data_len: u32,
    since_fix: u32,
}

impl WavWriter {
    pub fn create(path: &Path, rate: u32) -> io::Result<WavWriter> {
        WavWriter::create_channels(path, rate, 1)
    }

    /// A writer for `channels` interleaved channels (2 for a call
    /// recording: near end left, far end right).
    pub fn create_channels(path: &Path, rate: u32, channels: u16) -> io::Result<WavWriter> {
        let mut file = BufWriter::new(File::create(path)?);
        file.write_all(&header_ch(rate, channels, 0))?;
        Ok(WavWriter {
            file,
            rate,
            channels: channels.max(1),
            data_len: 0,
            since_fix: 0,
        })
    }

    /// Write two channels, interleaving `left` and `right` (the shorter is
    /// padded with silence).
    pub fn write_stereo(&mut self, left: &[i16], right: &[i16]) -> io::Result<()> {
        let n = left.len().max(right.len());
        for i in 0..n {
            self.file
                .write_all(&left.get(i).copied().unwrap_or(0).to_le_bytes())?;
            self.file
                .write_all(&right.get(i).copied().unwrap_or(0).to_le_bytes())?;
        }
        self.account((n * 4) as u32)
    }

    fn account(&mut self, bytes: u32) -> io::Result<()> {
        self.data_len = self.data_len.saturating_add(bytes);
        self.since_fix += bytes;
        if self.since_fix >= self.rate * 2 * u32::from(self.channels) {
            self.fix_header()?;
        }
        Ok(())
    }

    pub fn write(&mut self, samples: &[i16]) -> io::Result<()> {
        for s in samples {
            self.file.write_all(&s.to_le_bytes())?;
        }
        self.account((samples.len() * 2) as u32)
    }

    fn fix_header(&mut self) -> io::Result<()> {
        self.since_fix = 0;
        self.file.flush()?;
        let f = self.file.get_mut();
        f.seek(SeekFrom::Start(0))?;
        f.write_all(&header_ch(self.rate, self.channels, self.data_len))?;
        f.seek(SeekFrom::End(0))?;
        Ok(())
    }

    pub fn finish(&mut self) -> io::Result<()> {
        self.fix_header()?;
        self.file.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_stereo_downmix() {
        let w = Wav {
            sample_rate: 8000,
            samples: vec![0, 1, -1, i16::MAX, i16::MIN],
        };
        assert_eq!(Wav::parse(&w.to_bytes()).unwrap(), w);
        // Stereo (100, 300) and (-2, 2) → 200 and 0.
        let mut b = header(16000, 8).to_vec();
        b[22] = 2;
        for s in [100i16, 300, -2, 2] {
            b.extend_from_slice(&s.to_le_bytes());
        }
        let s = Wav::parse(&b).unwrap();
        assert_eq!((s.sample_rate, s.samples), (16000, vec![200, 0]));
    }

    #[test]
    fn rejects_what_it_cannot_read_without_panicking() {
        assert!(Wav::parse(b"").is_err());
        assert!(Wav::parse(b"RIFF\0\0\0\0WAVE").is_err());
        let mut b = header(8000, 0).to_vec();
        b[34] = 8; // 8-bit
        assert!(Wav::parse(&b).is_err());
        for n in 0..44 {
            let _ = Wav::parse(&header(8000, 100)[..n]);
        }
    }

    #[test]
    fn writer_output_is_readable_even_unfinished() {
        let path = std::env::temp_dir().join(format!("softline-wav-{}.wav", std::process::id()));
        let mut w = WavWriter::create(&path, 8000).unwrap();
        w.write(&[5; 100]).unwrap();
        w.file.flush().unwrap();
        // Header still says 0 bytes: read to the end anyway.
        assert_eq!(Wav::read(&path).unwrap().samples.len(), 100);
        w.finish().unwrap();
        assert_eq!(Wav::read(&path).unwrap().samples, vec![5; 100]);
        let _ = std::fs::remove_file(path);
    }
}
