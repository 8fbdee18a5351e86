//! Choosing a head's settings on held-out rows: the neutral band, per-class and
//! similarity thresholds, and the regularisation grid. Pure arithmetic over the
//! heads' outputs, so `feedloop train` and its tests share one copy.

use std::collections::BTreeMap;

use feedloop_core::neural::{argmax, label_of, LinearHead};
use feedloop_core::sentiment::Label;

/// The three-class index of a label, in the heads' class order.
pub fn three_class(label: Label) -> u32 {
    match label {
        Label::Negative => 0,
        Label::Neutral => 1,
        Label::Positive => 2,
    }
}

/// Counts of one binary decision against gold.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub tp: u64,
    pub fp: u64,
    pub fn_: u64,
}

impl Counts {
    pub fn add(&mut self, predicted: bool, gold: bool) {
        match (predicted, gold) {
            (true, true) => self.tp += 1,
            (true, false) => self.fp += 1,
            (false, true) => self.fn_ += 1,
            (false, false) => {}
        }
    }

    pub fn merge(self, o: Counts) -> Counts {
        Counts {
            tp: self.tp + o.tp,
            fp: self.fp + o.fp,
            fn_: self.fn_ + o.fn_,
        }
    }

    /// F1; 0 with no true positive (also when there is nothing to find).
    pub fn f1(self) -> f64 {
        if self.tp == 0 {
            0.0
        } else {
            2.0 * self.tp as f64 / (2 * self.tp + self.fp + self.fn_) as f64
        }
    }
}

fn share(hits: usize, of: usize) -> f64 {
    if of == 0 {
        0.0
    } else {
        hits as f64 / of as f64
    }
}

/// The first of `candidates` with the highest score (ties keep the earlier one), and
/// that score; `None` for no candidates.
pub fn best_of<T: Copy>(
    candidates: impl IntoIterator<Item = T>,
    score: impl Fn(T) -> f64,
) -> Option<(T, f64)> {
    candidates.into_iter().fold(None, |best, c| {
        let s = score(c);
        match best {
            Some((_, b)) if s <= b => best,
            _ => Some((c, s)),
        }
    })
}

/// The neutral bias in -0.40..=0.40 maximising 3-way accuracy, and that accuracy.
pub fn neutral_band(head: &LinearHead, x: &[Vec<f32>], y: &[u32]) -> (f64, f64) {
    let probs: Vec<Vec<f64>> = x.iter().map(|r| head.softmax(r)).collect();
    let accuracy = |bias: f64| {
        let ok = probs
            .iter()
            .zip(y)
            .filter(|(p, c)| three_class(label_of(p, bias)) == **c);
        share(ok.count(), y.len())
    };
    best_of((-40..=40).map(|s| f64::from(s) / 100.0), accuracy).unwrap_or((0.0, 0.0))
}

/// The share of rows whose most probable class is the gold one.
pub fn accuracy(head: &LinearHead, x: &[Vec<f32>], y: &[u32]) -> f64 {
    let ok = x
        .iter()
        .zip(y)
        .filter(|(r, c)| argmax(&head.softmax(r)) == **c as usize);
    share(ok.count(), y.len())
}

/// Per-class thresholds in 0.05..=0.95 maximising each class's F1, and the micro-F1
/// of all classes at those thresholds.
pub fn class_thresholds(head: &LinearHead, x: &[Vec<f32>], y: &[Vec<bool>]) -> (Vec<f64>, f64) {
    let probs: Vec<Vec<f64>> = x.iter().map(|r| head.sigmoid(r)).collect();
    let counts_at = |c: usize, t: f64| {
        let mut k = Counts::default();
        probs
            .iter()
            .zip(y)
            .for_each(|(p, g)| k.add(p[c] >= t, g[c]));
        k
    };
    let mut all = Counts::default();
    let thresholds = (0..head.classes.len())
        .map(|c| {
            let steps = (5..=95).map(|s| f64::from(s) / 100.0);
            let (t, _) = best_of(steps, |t| counts_at(c, t).f1()).unwrap_or((0.5, 0.0));
            all = all.merge(counts_at(c, t));
            t
        })
        .collect();
    (thresholds, all.f1())
}

/// A theme's similarity threshold: rows are (a phrase matched, best similarity to an
/// exemplar, gold). The threshold in 0.30..=0.90 where "phrase or similarity" has the
/// best F1, that F1, and the F1 of phrases alone; a threshold of 1.0 (similarity
/// never decides) when no threshold beats phrases alone.
pub fn similarity_threshold(rows: &[(bool, f64, bool)]) -> (f64, f64, f64) {
    let f1_at = |t: f64| {
        let mut k = Counts::default();
        rows.iter().for_each(|(p, s, g)| k.add(*p || *s >= t, *g));
        k.f1()
    };
    let phrases_only = f1_at(f64::INFINITY);
    let candidates = std::iter::once(1.0).chain((30..=90).map(|s| f64::from(s) / 100.0));
    let score = |t: f64| if t == 1.0 { phrases_only } else { f1_at(t) };
    let (t, f) = best_of(candidates, score).unwrap_or((1.0, phrases_only));
    (t, f, phrases_only)
}

/// One fit per regularisation strength: the best by its dev score, with every score
/// (keyed like `1e-3`) for the report.
pub struct GridChoice<T> {
    pub l2: f64,
    pub score: f64,
    pub fitted: T,
    pub grid: BTreeMap<String, f64>,
}

pub fn choose_l2<T, E>(
    l2s: &[f64],
    mut fit: impl FnMut(f64) -> Result<(T, f64), E>,
) -> Result<Option<GridChoice<T>>, E> {
    let mut best: Option<(f64, f64, T)> = None;
    let mut grid = BTreeMap::new();
    for &l2 in l2s {
        let (fitted, score) = fit(l2)?;
        grid.insert(format!("{l2:e}"), score);
        if best.as_ref().is_none_or(|b| score > b.1) {
            best = Some((l2, score, fitted));
        }
    }
    Ok(best.map(|(l2, score, fitted)| GridChoice {
        l2,
        score,
        fitted,
        grid,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A head over one-hot features whose logits are the features themselves.
    fn identity(classes: &[&str]) -> LinearHead {
        let n = classes.len();
        LinearHead {
            classes: classes.iter().map(|c| c.to_string()).collect(),
            weights: (0..n)
                .map(|i| (0..n).map(|j| f32::from(u8::from(i == j))).collect())
                .collect(),
            bias: vec![0.0; n],
        }
    }

    #[test]
    fn f1_counts_every_case_and_is_zero_without_a_hit() {
        let mut k = Counts::default();
        [
            (true, true),
            (true, true),
            (true, false),
            (false, true),
            (false, false),
        ]
        .iter()
        .for_each(|(p, g)| k.add(*p, *g));
        assert_eq!(
            k,
            Counts {
                tp: 2,
                fp: 1,
                fn_: 1
            }
        );
        assert!((k.f1() - 4.0 / 6.0).abs() < 1e-12);
        assert_eq!(
            Counts {
                tp: 0,
                fp: 3,
                fn_: 2
            }
            .f1(),
            0.0
        );
    }

    #[test]
    fn ties_keep_the_first_candidate() {
        assert_eq!(best_of([1, 2, 3, 4], |c| f64::from(c % 2)), Some((1, 1.0)));
        assert_eq!(best_of(Vec::<i32>::new(), |_| 0.0), None);
    }

    #[test]
    fn the_neutral_band_widens_until_weak_opinions_count_as_neutral() {
        let head = identity(&["negative", "neutral", "positive"]);
        // Two clear rows and two leaning rows whose gold is neutral.
        let x = vec![
            vec![4.0, 0.0, 0.0],
            vec![0.0, 0.0, 4.0],
            vec![0.5, 0.3, 0.0],
            vec![0.0, 0.3, 0.5],
        ];
        let y = [0, 2, 1, 1];
        let (bias, acc) = neutral_band(&head, &x, &y);
        assert_eq!(acc, 1.0);
        assert!(bias > 0.0 && bias <= 0.40, "bias {bias}");
        assert_eq!(accuracy(&head, &x, &y), 0.5);
    }

    #[test]
    fn class_thresholds_separate_each_class_and_report_micro_f1() {
        let head = identity(&["food", "service"]);
        // Sigmoids: food row at 0.88 (gold), a 0.62 decoy (not gold); service at 0.73.
        let x = vec![vec![2.0, -3.0], vec![0.5, 1.0], vec![-3.0, -3.0]];
        let y = vec![vec![true, false], vec![false, true], vec![false, false]];
        let (t, f1) = class_thresholds(&head, &x, &y);
        assert!(t[0] > 0.622 && t[0] <= 0.881, "food threshold {}", t[0]);
        assert!(t[1] > 0.047 && t[1] <= 0.731, "service threshold {}", t[1]);
        assert_eq!(f1, 1.0);
    }

    #[test]
    fn similarity_is_used_only_where_it_beats_phrases_alone() {
        // Phrases find one of two gold rows; similarity 0.6 finds the other, and a
        // non-gold row sits at 0.4.
        let rows = [(true, 0.2, true), (false, 0.6, true), (false, 0.4, false)];
        let (t, f, phrases) = similarity_threshold(&rows);
        assert!((phrases - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(f, 1.0);
        assert!(t > 0.4 && t <= 0.6, "threshold {t}");
        // Only noise above the phrases: similarity never decides.
        let noise = [(true, 0.2, true), (false, 0.8, false)];
        assert_eq!(similarity_threshold(&noise), (1.0, 1.0, 1.0));
    }

    #[test]
    fn the_grid_keeps_every_score_and_the_best_fit() {
        let choice =
            choose_l2::<_, ()>(&[1e-3, 1e-2, 1e-1], |l2| Ok((l2 * 2.0, -(l2 - 1e-2).abs())))
                .unwrap()
                .unwrap();
        assert_eq!((choice.l2, choice.fitted), (1e-2, 2e-2));
        assert_eq!(choice.grid.len(), 3);
        assert_eq!(choice.grid["1e-2"], 0.0);
        assert!(choose_l2::<(), ()>(&[], |_| unreachable!())
            .unwrap()
            .is_none());
    }
}
