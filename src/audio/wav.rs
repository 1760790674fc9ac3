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
    /// written) is read to the end of the bytes.
    pub fn parse(b: &[u8]) -> io::Result<Wav> {
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
                let samples = data
                    .chunks_exact(2 * channels as usize)
                    .map(|frame| {
                        let sum: i32 = frame
                            .chunks_exact(2)
                            .map(|s| i32::from(i16::from_le_bytes([s[0], s[1]])))
                            .sum();
                        (sum / i32::from(channels)) as i16
                    })
                    .collect();
                return Ok(Wav {
                    sample_rate: rate,
                    samples,
                });
            }
            pos = body + size + (size & 1);
        }
        Err(bad("no data chunk"))
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

fn header(rate: u32, data_len: u32) -> [u8; 44] {
    let mut h = [0u8; 44];
    h[0..4].copy_from_slice(b"RIFF");
    h[4..8].copy_from_slice(&(36 + data_len).to_le_bytes());
    h[8..12].copy_from_slice(b"WAVE");
    h[12..16].copy_from_slice(b"fmt ");
    h[16..20].copy_from_slice(&16u32.to_le_bytes());
    h[20..22].copy_from_slice(&1u16.to_le_bytes());
    h[22..24].copy_from_slice(&1u16.to_le_bytes());
    h[24..28].copy_from_slice(&rate.to_le_bytes());
    h[28..32].copy_from_slice(&(rate * 2).to_le_bytes());
    h[32..34].copy_from_slice(&2u16.to_le_bytes());
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
    data_len: u32,
    since_fix: u32,
}

impl WavWriter {
    pub fn create(path: &Path, rate: u32) -> io::Result<WavWriter> {
        let mut file = BufWriter::new(File::create(path)?);
        file.write_all(&header(rate, 0))?;
        Ok(WavWriter {
            file,
            rate,
            data_len: 0,
            since_fix: 0,
        })
    }

    pub fn write(&mut self, samples: &[i16]) -> io::Result<()> {
        for s in samples {
            self.file.write_all(&s.to_le_bytes())?;
        }
        let bytes = (samples.len() * 2) as u32;
        self.data_len = self.data_len.saturating_add(bytes);
        self.since_fix += bytes;
        if self.since_fix >= self.rate * 2 {
            self.fix_header()?;
        }
        Ok(())
    }

    fn fix_header(&mut self) -> io::Result<()> {
        self.since_fix = 0;
        self.file.flush()?;
        let f = self.file.get_mut();
        f.seek(SeekFrom::Start(0))?;
        f.write_all(&header(self.rate, self.data_len))?;
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
