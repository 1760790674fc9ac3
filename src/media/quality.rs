//! Call quality as a listener would rate it: the ITU-T G.107 E-model,
//! simplified the usual way (default values for everything but the
//! codec, packet loss and delay), turned into an estimated MOS and a
//! traffic light.
//!
//! R = 93.2 − Id − Ie,eff, with
//! - Id = 0.024·Ta + 0.11·(Ta − 177.3)·H(Ta − 177.3) (Ta: one-way delay, ms),
//! - Ie,eff = Ie + (95 − Ie)·Ppl / (Ppl + Bpl) (random loss, BurstR = 1),
//!
//! and MOS = 1 + 0.035·R + R·(R − 60)·(100 − R)·7·10⁻⁶ (G.107 Annex B).
//!
//! Codec figures: G.711 with concealment Ie 0, Bpl 25.1 (G.113 Appendix I).
//! G.722 and Opus have no narrowband-scale values in G.113; they are rated
//! here like G.711 (Ie 0) with Bpl 25.1 for G.722 and 30 for Opus (its
//! in-band FEC and concealment degrade more gently) — approximations, so
//! the figure is a guide for the agent, not a measurement.

use serde::Serialize;

/// What the traffic light shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Light {
    /// MOS ≥ 4.0 (R ≥ 80): users satisfied.
    Green,
    /// MOS 3.6–4.0 (R 70–80): some users dissatisfied.
    Amber,
    /// MOS < 3.6: many users dissatisfied.
    Red,
}

/// A call's quality estimate.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Quality {
    pub r: f64,
    pub mos: f64,
    pub light: Light,
    /// The one-way delay the estimate assumed, in ms.
    pub delay_ms: f64,
}

/// Packet-loss robustness (Bpl) for a codec name as SDP names it.
fn bpl(codec: &str) -> f64 {
    match codec.to_ascii_lowercase().as_str() {
        "opus" => 30.0,
        _ => 25.1,
    }
}

/// Estimate the quality of a call from its codec, loss (percent, 0–100) and
/// one-way delay (ms): network (half the RTCP round trip, when known) plus
/// the jitter buffer plus packetization.
pub fn estimate(codec: &str, loss_pct: f64, one_way_delay_ms: f64) -> Quality {
    let finite = |v: f64| if v.is_finite() { v } else { 0.0 };
    let ppl = finite(loss_pct).clamp(0.0, 100.0);
    let ta = finite(one_way_delay_ms).clamp(0.0, 10_000.0);
    let id = 0.024 * ta + if ta > 177.3 { 0.11 * (ta - 177.3) } else { 0.0 };
    let ie = 0.0;
    let ie_eff = ie + (95.0 - ie) * ppl / (ppl + bpl(codec));
    let r = (93.2 - id - ie_eff).clamp(0.0, 100.0);
    let mos = if r <= 0.0 {
        1.0
    } else if r >= 100.0 {
        4.5
    } else {
        1.0 + 0.035 * r + r * (r - 60.0) * (100.0 - r) * 7e-6
    };
    let light = if r >= 80.0 {
        Light::Green
    } else if r >= 70.0 {
        Light::Amber
    } else {
        Light::Red
    };
    Quality {
        r,
        mos,
        light,
        delay_ms: ta,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 0.01
    }

    #[test]
    fn a_clean_short_call_rates_as_g107_says() {
        let q = estimate("PCMU", 0.0, 0.0);
        assert!(close(q.r, 93.2), "{q:?}");
        // G.107: R 93.2 ↔ MOS 4.41.
        assert!(close(q.mos, 4.41), "{q:?}");
        assert_eq!(q.light, Light::Green);
    }

    #[test]
    fn loss_and_delay_lower_the_rating() {
        // 5 % random loss on G.711 with PLC: Ie,eff = 95·5/30.1 = 15.78.
        let q = estimate("PCMA", 5.0, 0.0);
        assert!(close(q.r, 93.2 - 95.0 * 5.0 / 30.1), "{q:?}");
        assert_eq!(q.light, Light::Amber);
        // 300 ms one way: Id = 7.2 + 0.11·122.7 = 20.7, R = 72.5.
        let q = estimate("PCMU", 0.0, 300.0);
        assert!(close(q.r, 93.2 - 7.2 - 0.11 * 122.7), "{q:?}");
        assert_eq!(q.light, Light::Amber);
        // 400 ms: Id = 9.6 + 0.11·222.7 = 34.1, R = 59.1.
        let q = estimate("PCMU", 0.0, 400.0);
        assert!(close(q.r, 93.2 - 9.6 - 0.11 * 222.7), "{q:?}");
        assert_eq!(q.light, Light::Red);
        // Opus degrades more gently under the same loss.
        assert!(estimate("opus", 5.0, 0.0).r > estimate("PCMU", 5.0, 0.0).r);
    }

    #[test]
    fn nonsense_inputs_stay_in_range() {
        for (loss, delay) in [
            (-5.0, -1.0),
            (250.0, 1e9),
            (f64::MAX, 0.0),
            (f64::NAN, f64::INFINITY),
        ] {
            let q = estimate("x", loss, delay);
            assert!((1.0..=4.5).contains(&q.mos), "{q:?}");
            assert!((0.0..=100.0).contains(&q.r), "{q:?}");
        }
    }
}
