//! The ready set of the plan's topological sort: the numbers of the steps
//! whose dependencies are all placed, smallest first.

/// A set of numbers below a bound that gives up its smallest: one bit per
/// number, and above them one bit per word that is not empty, up to a
/// single word. The steps ready to be placed, up to millions of them: a
/// binary heap of them costs a cache miss per level per step once it
/// outgrows the caches, where a lookup here reads one word per level, and
/// the steps are mostly taken in the order they were made, word by word.
pub(super) struct Ready {
    /// `levels[0]` has a bit per number; each next level a bit per word of
    /// the one below; the last is one word.
    levels: Vec<Vec<u64>>,
}

impl Ready {
    pub fn new(bound: usize) -> Ready {
        let mut levels = Vec::new();
        let mut bits = bound;
        loop {
            let words = bits.div_ceil(64).max(1);
            levels.push(vec![0; words]);
            if words == 1 {
                return Ready { levels };
            }
            bits = words;
        }
    }

    pub fn insert(&mut self, number: usize) {
        let mut at = number;
        for level in &mut self.levels {
            let word = &mut level[at / 64];
            let was_empty = *word == 0;
            *word |= 1 << (at % 64);
            if !was_empty {
                // The levels above already mark this word.
                return;
            }
            at /= 64;
        }
    }

    pub fn pop_first(&mut self) -> Option<usize> {
        let mut at = 0;
        for level in self.levels.iter().rev() {
            let word = level[at];
            if word == 0 {
                // Only the top word can be empty here: a set bit above
                // marks a word that is not.
                return None;
            }
            at = at * 64 + word.trailing_zeros() as usize;
        }
        let first = at;
        for level in &mut self.levels {
            let word = &mut level[at / 64];
            *word &= !(1 << (at % 64));
            if *word != 0 {
                return Some(first);
            }
            at /= 64;
        }
        Some(first)
    }
}

#[cfg(test)]
mod tests {
    use proptest::strategy::Strategy as _;

    use super::*;

    proptest::proptest! {
        /// The ready set gives up numbers as a min-heap of them would,
        /// whatever the bound (one level or several) and the interleaving.
        #[test]
        fn the_ready_set_gives_up_its_smallest_number_first(
            bound in 1usize..300_000,
            ops in proptest::collection::vec(proptest::prop_oneof![
                proptest::prelude::any::<proptest::sample::Index>().prop_map(Some),
                proptest::strategy::Just(None),
            ], 0..400),
        ) {
            use std::cmp::Reverse;
            use std::collections::{BinaryHeap, HashSet};
            let mut ready = Ready::new(bound);
            let mut heap = BinaryHeap::new();
            let mut held = HashSet::new();
            for op in ops {
                match op {
                    // A set holds a number once; the plan inserts each once.
                    Some(i) => {
                        let number = i.index(bound);
                        if held.insert(number) {
                            ready.insert(number);
                            heap.push(Reverse(number));
                        }
                    }
                    None => {
                        let want = heap.pop().map(|Reverse(n)| n);
                        if let Some(n) = want {
                            held.remove(&n);
                        }
                        proptest::prop_assert_eq!(ready.pop_first(), want);
                    }
                }
            }
            while let Some(Reverse(n)) = heap.pop() {
                proptest::prop_assert_eq!(ready.pop_first(), Some(n));
            }
            proptest::prop_assert_eq!(ready.pop_first(), None);
        }
    }
}
