//! SplitMix64: the deterministic generator the sans-IO core derives tags,
//! branches, cnonces and jitter from. The runtime seeds it; tests seed it
//! with constants. Uniqueness, not secrecy: nothing here is a key.

/// Advance `state` and return the next value.
pub fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    #[test]
    fn distinct_values_from_one_seed() {
        let mut s = 7;
        let v: std::collections::HashSet<u64> =
            (0..10_000).map(|_| super::splitmix64(&mut s)).collect();
        assert_eq!(v.len(), 10_000);
    }
}
