//! Audio for the simulator: G.711 mu-law at 8 kHz, from a generated tone or a 16-bit PCM WAV file.

use std::f64::consts::PI;

/// Bytes of mu-law in one 20 ms `media` frame at 8 kHz.
pub const FRAME_BYTES: usize = 160;

/// Encodes one 16-bit linear sample as G.711 mu-law.
pub fn mulaw(sample: i16) -> u8 {
    const BIAS: i32 = 0x84;
    const CLIP: i32 = 32_635;
    let mut s = i32::from(sample);
    let sign = if s < 0 { 0x80 } else { 0 };
    if s < 0 {
        s = -s;
    }
    s = s.min(CLIP) + BIAS;
    let mut exponent = 7;
    let mut mask = 0x4000;
    while exponent > 0 && s & mask == 0 {
        exponent -= 1;
        mask >>= 1;
    }
    let mantissa = (s >> (exponent + 3)) & 0x0F;
    !(sign | (exponent << 4) | mantissa) as u8
}

/// `frames` frames of a sine tone at `hz` (8 kHz mu-law).
pub fn tone(hz: f64, frames: usize) -> Vec<[u8; FRAME_BYTES]> {
    (0..frames)
        .map(|f| {
            let mut out = [0u8; FRAME_BYTES];
            for (i, b) in out.iter_mut().enumerate() {
                let n = (f * FRAME_BYTES + i) as f64;
                let v = (2.0 * PI * hz * n / 8000.0).sin() * 8000.0;
                *b = mulaw(v as i16);
            }
            out
        })
        .collect()
}

/// Why a WAV file cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("WAV: {0}")]
pub struct WavError(&'static str);

/// WAV format tag of G.711 mu-law.
pub const WAVE_FORMAT_MULAW: u16 = 7;

/// A WAV file holding `mulaw` as it is: 8 kHz mono G.711 mu-law (format tag 7, 8 bits per sample,
/// a `fact` chunk as non-PCM formats require). The bytes are kept exactly — what `sim --record`
/// heard is what the file holds — and common players (sox, ffmpeg, Audacity, VLC) play it.
pub fn mulaw_wav(mulaw: &[u8]) -> Vec<u8> {
    let len = u32::try_from(mulaw.len()).unwrap_or(u32::MAX - 64);
    let data = &mulaw[..len as usize];
    let pad = len & 1;
    // "WAVE" + fmt (8 + 18) + fact (8 + 4) + data (8 + len + pad).
    let riff = 4 + 26 + 12 + 8 + len + pad;
    let mut v = Vec::with_capacity(riff as usize + 8);
    v.extend(b"RIFF");
    v.extend(riff.to_le_bytes());
    v.extend(b"WAVEfmt ");
    v.extend(18u32.to_le_bytes());
    v.extend(WAVE_FORMAT_MULAW.to_le_bytes());
    v.extend(1u16.to_le_bytes()); // mono
    v.extend(8000u32.to_le_bytes()); // samples per second
    v.extend(8000u32.to_le_bytes()); // bytes per second
    v.extend(1u16.to_le_bytes()); // block align
    v.extend(8u16.to_le_bytes()); // bits per sample
    v.extend(0u16.to_le_bytes()); // no extension
    v.extend(b"fact");
    v.extend(4u32.to_le_bytes());
    v.extend(len.to_le_bytes()); // samples
    v.extend(b"data");
    v.extend(len.to_le_bytes());
    v.extend(data);
    if pad == 1 {
        v.push(0);
    }
    v
}

/// Reads a 16-bit PCM WAV (any rate, mono or multi-channel), mixes to mono, resamples to 8 kHz
/// (linear interpolation) and encodes mu-law frames (the last one padded with silence); an 8 kHz
/// mono mu-law WAV (what `sim --record` writes) is framed as it is.
pub fn wav_to_frames(bytes: &[u8]) -> Result<Vec<[u8; FRAME_BYTES]>, WavError> {
    if bytes.len() < 12 || &bytes[..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
        return Err(WavError("not a RIFF/WAVE file"));
    }
    let mut pos = 12;
    let mut fmt: Option<(u16, u16, u32, u16)> = None;
    let mut data: Option<&[u8]> = None;
    while pos + 8 <= bytes.len() {
        let id = &bytes[pos..pos + 4];
        let len = u32::from_le_bytes([
            bytes[pos + 4],
            bytes[pos + 5],
            bytes[pos + 6],
            bytes[pos + 7],
        ]) as usize;
        let body = bytes
            .get(pos + 8..(pos + 8).saturating_add(len).min(bytes.len()))
            .ok_or(WavError("truncated chunk"))?;
        match id {
            b"fmt " if body.len() >= 16 => {
                let u16at = |i: usize| u16::from_le_bytes([body[i], body[i + 1]]);
                let rate = u32::from_le_bytes([body[4], body[5], body[6], body[7]]);
                fmt = Some((u16at(0), u16at(2), rate, u16at(14)));
            }
            b"data" => data = Some(body),
            _ => {}
        }
        pos = pos.saturating_add(8).saturating_add(len + (len & 1));
    }
    let (format, channels, rate, bits) = fmt.ok_or(WavError("no fmt chunk"))?;
    let data = data.ok_or(WavError("no data chunk"))?;
    if format == WAVE_FORMAT_MULAW {
        if (channels, rate, bits) != (1, 8000, 8) {
            return Err(WavError("mu-law must be 8 kHz mono, 8 bits"));
        }
        if data.is_empty() {
            return Err(WavError("no samples"));
        }
        return Ok(frames_of(data));
    }
    if format != 1 || bits != 16 {
        return Err(WavError("only 16-bit PCM is supported"));
    }
    if channels == 0 || rate == 0 {
        return Err(WavError("bad channel count or rate"));
    }
    let ch = usize::from(channels);
    let mono: Vec<f64> = data
        .chunks_exact(2 * ch)
        .map(|f| {
            f.chunks_exact(2)
                .map(|s| f64::from(i16::from_le_bytes([s[0], s[1]])))
                .sum::<f64>()
                / ch as f64
        })
        .collect();
    if mono.is_empty() {
        return Err(WavError("no samples"));
    }
    let step = f64::from(rate) / 8000.0;
    let count = (mono.len() as f64 / step) as usize;
    let encoded: Vec<u8> = (0..count)
        .map(|i| {
            let x = i as f64 * step;
            let j = x as usize;
            let a = mono[j.min(mono.len() - 1)];
            let b = mono[(j + 1).min(mono.len() - 1)];
            mulaw((a + (b - a) * (x - j as f64)) as i16)
        })
        .collect();
    Ok(frames_of(&encoded))
}

/// `mulaw` in 20 ms frames, the last one padded with silence (0xFF).
fn frames_of(mulaw: &[u8]) -> Vec<[u8; FRAME_BYTES]> {
    mulaw
        .chunks(FRAME_BYTES)
        .map(|c| {
            let mut out = [0xFFu8; FRAME_BYTES]; // 0xFF is mu-law silence
            out[..c.len()].copy_from_slice(c);
            out
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mulaw_known_values() {
        // G.711 reference points.
        assert_eq!(mulaw(0), 0xFF);
        assert_eq!(mulaw(-1), 0x7F);
        assert_eq!(mulaw(32_767), 0x80);
        assert_eq!(mulaw(-32_768), 0x00);
    }

    fn wav(rate: u32, channels: u16, samples: &[i16]) -> Vec<u8> {
        let data: Vec<u8> = samples.iter().flat_map(|s| s.to_le_bytes()).collect();
        let mut v = b"RIFF".to_vec();
        v.extend((36 + data.len() as u32).to_le_bytes());
        v.extend(b"WAVEfmt ");
        v.extend(16u32.to_le_bytes());
        v.extend(1u16.to_le_bytes());
        v.extend(channels.to_le_bytes());
        v.extend(rate.to_le_bytes());
        v.extend((rate * 2 * u32::from(channels)).to_le_bytes());
        v.extend((2 * channels).to_le_bytes());
        v.extend(16u16.to_le_bytes());
        v.extend(b"data");
        v.extend((data.len() as u32).to_le_bytes());
        v.extend(data);
        v
    }

    #[test]
    fn wav_is_resampled_to_8khz_frames() {
        let one_second_16k = vec![0i16; 16_000];
        let frames = wav_to_frames(&wav(16_000, 1, &one_second_16k)).expect("wav");
        assert_eq!(frames.len(), 50);
        assert!(frames.iter().all(|f| f.iter().all(|b| *b == 0xFF)));
    }

    #[test]
    fn garbage_is_refused_not_panicking() {
        assert!(wav_to_frames(b"RIFF\x00\x00").is_err());
        assert!(wav_to_frames(&wav(8000, 1, &[])).is_err());
        let mut w = wav(8000, 1, &[1, 2, 3]);
        w.truncate(30);
        assert!(wav_to_frames(&w).is_err());
    }

    #[test]
    fn a_recording_is_a_valid_mulaw_wav_that_reads_back_exactly() {
        let audio: Vec<u8> = (0..=255u8).cycle().take(3 * FRAME_BYTES + 1).collect();
        let w = mulaw_wav(&audio);
        let u32at = |i: usize| u32::from_le_bytes([w[i], w[i + 1], w[i + 2], w[i + 3]]);
        let u16at = |i: usize| u16::from_le_bytes([w[i], w[i + 1]]);
        assert_eq!(&w[..4], b"RIFF");
        assert_eq!(u32at(4) as usize, w.len() - 8);
        assert_eq!(w.len() % 2, 0);
        assert_eq!(&w[8..16], b"WAVEfmt ");
        assert_eq!(
            (u32at(16), u16at(20), u16at(22), u32at(24)),
            (18, 7, 1, 8000)
        );
        assert_eq!((u32at(28), u16at(32), u16at(34)), (8000, 1, 8));
        assert_eq!((&w[38..42], u32at(42), u32at(46)), (&b"fact"[..], 4, 481));
        assert_eq!(
            (&w[50..54], u32at(54) as usize),
            (&b"data"[..], audio.len())
        );
        assert_eq!(&w[58..58 + audio.len()], &audio[..]);
        let frames = wav_to_frames(&w).expect("reads back");
        assert_eq!(frames.len(), 4);
        assert_eq!(&frames.concat()[..audio.len()], &audio[..]);
        assert!(frames[3][1..].iter().all(|b| *b == 0xFF));
        assert!(wav_to_frames(&mulaw_wav(&[])).is_err());
    }

    #[test]
    fn tone_has_requested_frames() {
        assert_eq!(tone(440.0, 3).len(), 3);
    }
}
