//! Statistics for experiment results: intervals for trait-expression rates (Wilson), a
//! seeded bootstrap interval of a mean (the prompt-strength meter), agreement between two
//! raters (Cohen's kappa over a confusion table: human review against a judge) and
//! Spearman's rank correlation with a Fisher-z interval.
//!
//! Functions take plain slices and return `None` where a statistic is undefined (no data,
//! no variance) rather than NaN, so callers must decide what an empty cell shows.

use std::collections::HashMap;
use std::hash::Hash;

use rand::Rng;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use statrs::distribution::{ContinuousCDF, Normal};

/// A rate with its confidence interval, as the charts show it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Proportion {
    pub successes: u64,
    pub n: u64,
    pub rate: f64,
    pub lo: f64,
    pub hi: f64,
}

impl Proportion {
    /// The rate `successes / n` with its Wilson interval; `None` when `n` is 0.
    pub fn wilson(successes: u64, n: u64, confidence: f64) -> Option<Proportion> {
        let (lo, hi) = wilson_interval(successes, n, confidence)?;
        Some(Proportion { successes, n, rate: successes as f64 / n as f64, lo, hi })
    }

    /// Counts the verdicts that were decided (`Some`), leaving out undetermined ones, so a
    /// judge that could not tell does not count as "trait absent".
    pub fn from_verdicts<I>(verdicts: I, confidence: f64) -> Option<Proportion>
    where
        I: IntoIterator<Item = Option<bool>>,
    {
        let (mut successes, mut n) = (0u64, 0u64);
        for verdict in verdicts.into_iter().flatten() {
            n += 1;
            successes += u64::from(verdict);
        }
        Proportion::wilson(successes, n, confidence)
    }
}

/// The two-sided standard-normal quantile for a confidence level: 1.96 for 0.95.
///
/// Panics unless `0 < confidence < 1`: a level outside that range is a programming error,
/// not a data condition.
pub fn z_for_confidence(confidence: f64) -> f64 {
    assert!(confidence > 0.0 && confidence < 1.0, "confidence must lie strictly between 0 and 1, got {confidence}");
    Normal::standard().inverse_cdf(1.0 - (1.0 - confidence) / 2.0)
}

/// Wilson score interval for a binomial proportion; `None` when `n` is 0.
///
/// Wilson rather than the normal (Wald) interval because our cells are small (tens of
/// samples) and rates are often near 0 or 1, where Wald collapses to a zero-width interval.
pub fn wilson_interval(successes: u64, n: u64, confidence: f64) -> Option<(f64, f64)> {
    if n == 0 {
        return None;
    }
    assert!(successes <= n, "successes ({successes}) exceed trials ({n})");
    let z = z_for_confidence(confidence);
    let n = n as f64;
    let p = successes as f64 / n;
    let z2 = z * z;
    let denominator = 1.0 + z2 / n;
    let centre = (p + z2 / (2.0 * n)) / denominator;
    let half = z / denominator * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    Some(((centre - half).max(0.0), (centre + half).min(1.0)))
}

/// Percentile-bootstrap interval of the mean: `(mean, lo, hi)`.
///
/// Seeded with ChaCha8 so that the same stored values always give the same interval on any
/// platform. Non-finite values are left out. `None` when no finite value remains or
/// `resamples` is 0. Quantiles of the resampled means interpolate linearly (R's type 7,
/// numpy's default).
pub fn bootstrap_mean_ci(values: &[f64], resamples: usize, confidence: f64, seed: u64) -> Option<(f64, f64, f64)> {
    assert!(confidence > 0.0 && confidence < 1.0, "confidence must lie in (0, 1)");
    let values: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    if values.is_empty() || resamples == 0 {
        return None;
    }
    let n = values.len();
    let mean = values.iter().sum::<f64>() / n as f64;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut means: Vec<f64> =
        (0..resamples).map(|_| (0..n).map(|_| values[rng.gen_range(0..n)]).sum::<f64>() / n as f64).collect();
    means.sort_by(f64::total_cmp);
    let alpha = (1.0 - confidence) / 2.0;
    Some((mean, quantile_sorted(&means, alpha), quantile_sorted(&means, 1.0 - alpha)))
}

/// Linear-interpolation quantile (type 7) of sorted, non-empty data.
fn quantile_sorted(sorted: &[f64], q: f64) -> f64 {
    let position = q * (sorted.len() - 1) as f64;
    let below = position.floor() as usize;
    let above = position.ceil() as usize;
    let fraction = position - below as f64;
    sorted[below] + (sorted[above] - sorted[below]) * fraction
}

/// Counts of (rater A's label, rater B's label) pairs. Labels are listed in the order they
/// first appear (A before B within a pair), so the table is deterministic for a given input.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfusionTable<L> {
    pub labels: Vec<L>,
    /// `counts[i][j]`: items rater A labelled `labels[i]` and rater B labelled `labels[j]`.
    pub counts: Vec<Vec<u64>>,
}

impl<L: Eq + Hash + Clone> ConfusionTable<L> {
    pub fn from_pairs(pairs: &[(L, L)]) -> ConfusionTable<L> {
        let mut index: HashMap<L, usize> = HashMap::new();
        let mut labels = Vec::new();
        for (a, b) in pairs {
            for label in [a, b] {
                if !index.contains_key(label) {
                    index.insert(label.clone(), labels.len());
                    labels.push(label.clone());
                }
            }
        }
        let mut counts = vec![vec![0u64; labels.len()]; labels.len()];
        for (a, b) in pairs {
            counts[index[a]][index[b]] += 1;
        }
        ConfusionTable { labels, counts }
    }

    pub fn total(&self) -> u64 {
        self.counts.iter().flatten().sum()
    }

    /// Share of items on which the raters agree; `None` for an empty table.
    pub fn observed_agreement(&self) -> Option<f64> {
        let total = self.total();
        (total > 0).then(|| (0..self.labels.len()).map(|i| self.counts[i][i]).sum::<u64>() as f64 / total as f64)
    }

    /// Cohen's kappa: agreement corrected for the agreement expected by chance from each
    /// rater's label frequencies. `None` for an empty table, and when chance agreement is
    /// already 1 (both raters used one and the same label for everything), where kappa is
    /// 0/0.
    pub fn kappa(&self) -> Option<f64> {
        let total = self.total() as f64;
        let observed = self.observed_agreement()?;
        let k = self.labels.len();
        let expected: f64 = (0..k)
            .map(|i| {
                let row: u64 = self.counts[i].iter().sum();
                let column: u64 = (0..k).map(|r| self.counts[r][i]).sum();
                (row as f64 / total) * (column as f64 / total)
            })
            .sum();
        if (1.0 - expected).abs() < 1e-12 {
            return None;
        }
        Some((observed - expected) / (1.0 - expected))
    }
}

/// Cohen's kappa of two raters over the same items, each pair being (rater A, rater B).
pub fn cohens_kappa<L: Eq + Hash + Clone>(pairs: &[(L, L)]) -> Option<f64> {
    ConfusionTable::from_pairs(pairs).kappa()
}

/// A correlation coefficient with its confidence interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Correlation {
    pub rho: f64,
    pub n: usize,
    /// Fisher-z interval; `None` when `n <= 3`, where the approximation has no variance.
    pub interval: Option<(f64, f64)>,
}

/// Ranks starting at 1, tied values sharing the average of the ranks they span (as
/// scipy.stats.rankdata's default "average" method).
pub fn average_ranks(values: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
    let mut ranks = vec![0.0; values.len()];
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && values[order[end]] == values[order[start]] {
            end += 1;
        }
        // Positions start..end (0-based) hold ranks start+1..=end; their mean:
        let rank = (start + 1 + end) as f64 / 2.0;
        for &i in &order[start..end] {
            ranks[i] = rank;
        }
        start = end;
    }
    ranks
}

/// Pearson's correlation; `None` when fewer than two points or either side is constant.
pub fn pearson(xs: &[f64], ys: &[f64]) -> Option<f64> {
    assert_eq!(xs.len(), ys.len(), "pearson needs paired samples");
    let n = xs.len();
    if n < 2 {
        return None;
    }
    let mean_x = xs.iter().sum::<f64>() / n as f64;
    let mean_y = ys.iter().sum::<f64>() / n as f64;
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (x, y) in xs.iter().zip(ys) {
        let (dx, dy) = (x - mean_x, y - mean_y);
        sxy += dx * dy;
        sxx += dx * dx;
        syy += dy * dy;
    }
    if sxx == 0.0 || syy == 0.0 {
        return None;
    }
    Some((sxy / (sxx * syy).sqrt()).clamp(-1.0, 1.0))
}

/// Spearman's rank correlation (Pearson on average ranks, so ties are handled) with a
/// Fisher-z interval. The z standard error uses Fieller, Hartley and Pearson's (1957)
/// variance 1.06 / (n - 3) for Spearman rather than Pearson's 1 / (n - 3).
/// Non-finite pairs must be removed by the caller: they panic here.
pub fn spearman(xs: &[f64], ys: &[f64], confidence: f64) -> Option<Correlation> {
    assert!(xs.iter().chain(ys).all(|v| v.is_finite()), "spearman needs finite values");
    let rho = pearson(&average_ranks(xs), &average_ranks(ys))?;
    let n = xs.len();
    let interval = (n > 3).then(|| {
        let z = z_for_confidence(confidence);
        let se = (1.06 / (n as f64 - 3.0)).sqrt();
        let centre = rho.atanh();
        ((centre - z * se).tanh(), (centre + z * se).tanh())
    });
    Some(Correlation { rho, n, interval })
}
