//! The one deterministic generator for made-up data: the demo's customers and the
//! tests' traffic and fault schedules. splitmix64: tiny, fast, and a seed replays a
//! run exactly (the chaos tests print theirs). Not for anything secret.

#[derive(Debug, Clone)]
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// 0..n (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// An index into something `len` long (len > 0).
    pub fn index(&mut self, len: usize) -> usize {
        self.below(len as u64) as usize
    }

    pub fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.index(xs.len())]
    }

    /// lo..=hi.
    pub fn between(&mut self, lo: u8, hi: u8) -> u8 {
        lo + self.index(usize::from(hi - lo) + 1) as u8
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
}

#[cfg(test)]
mod tests {
    use super::Rng;

    #[test]
    fn a_seed_replays_the_same_draws_and_draws_stay_in_range() {
        let (mut a, mut b) = (Rng(7), Rng(7));
        let xs: Vec<u64> = (0..100).map(|_| a.below(10)).collect();
        assert_eq!(xs, (0..100).map(|_| b.below(10)).collect::<Vec<_>>());
        assert!(xs.iter().all(|x| *x < 10));
        assert!((0..10).any(|d| xs.iter().filter(|x| **x == d).count() > 3));
        let mut r = Rng(1);
        assert!((0..1000).all(|_| (3..=5).contains(&r.between(3, 5))));
        let hits = (0..10_000).filter(|_| r.chance(0.25)).count();
        assert!((2_200..2_800).contains(&hits), "{hits}");
    }
}
