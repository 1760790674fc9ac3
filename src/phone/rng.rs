//! A small deterministic PRNG (xorshift64*) seeded by the runtime, so the
//! core stays reproducible in tests. Not for cryptography: cnonces and tags
//! need uniqueness, not secrecy.

pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A From/To tag.
    pub fn tag(&mut self) -> String {
        format!("{:012x}", self.next_u64() >> 16)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn distinct_values_and_tags() {
        let mut r = super::Rng::new(42);
        let a: Vec<u64> = (0..1000).map(|_| r.next_u64()).collect();
        let set: std::collections::HashSet<_> = a.iter().collect();
        assert_eq!(set.len(), 1000);
        assert_eq!(r.tag().len(), 12);
    }
}
