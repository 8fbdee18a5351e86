//! Fitting the small heads: L2-regularised logistic regression (softmax for one label,
//! one sigmoid per class for multi-label), full batch, with candle-nn's AdamW on
//! standardised features. Deterministic: zero initialisation, fixed step count, no
//! sampling, so a retrain from the same embeddings reproduces the same weights.

use candle_core::backprop::GradStore;
use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use feedloop_core::neural::LinearHead;

/// Make every later fit independent of the machine's core count. candle splits a matrix
/// product over `RAYON_NUM_THREADS` threads (read at each product) and the split may
/// change float sums, which AdamW amplifies (see `optimise`). The encoder's own
/// parallelism (whole texts per thread) changes no number, so the rayon pool keeps the
/// cores: it is built here, before the variable is pinned to 1 for candle.
pub fn single_threaded_fits() {
    let threads = std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    // Err means a pool already exists (it then keeps its size): nothing to do.
    let _ = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global();
    std::env::set_var("RAYON_NUM_THREADS", "1");
}

#[derive(Debug, Clone, Copy)]
pub struct FitSettings {
    /// Penalty on the squared weights (in standardised units), averaged like the loss.
    pub l2: f64,
    pub steps: usize,
    pub learning_rate: f64,
}

impl Default for FitSettings {
    fn default() -> Self {
        FitSettings {
            l2: 1e-3,
            steps: 300,
            learning_rate: 0.05,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FitError {
    #[error("no training rows")]
    Empty,
    #[error("rows have different lengths")]
    Ragged,
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

struct Standardised {
    x: Tensor,
    mean: Vec<f32>,
    std: Vec<f32>,
}

fn standardise(rows: &[Vec<f32>], device: &Device) -> Result<Standardised, FitError> {
    let d = rows.first().ok_or(FitError::Empty)?.len();
    if rows.iter().any(|r| r.len() != d) {
        return Err(FitError::Ragged);
    }
    let n = rows.len() as f64;
    let mut mean = vec![0f64; d];
    for r in rows {
        for (m, v) in mean.iter_mut().zip(r) {
            *m += f64::from(*v);
        }
    }
    mean.iter_mut().for_each(|m| *m /= n);
    let mut var = vec![0f64; d];
    for r in rows {
        for ((s, v), m) in var.iter_mut().zip(r).zip(&mean) {
            *s += (f64::from(*v) - m).powi(2);
        }
    }
    let std: Vec<f32> = var
        .iter()
        .map(|s| ((s / n).sqrt().max(1e-6)) as f32)
        .collect();
    let mean: Vec<f32> = mean.iter().map(|m| *m as f32).collect();
    let mut flat = Vec::with_capacity(rows.len() * d);
    for r in rows {
        flat.extend(r.iter().zip(&mean).zip(&std).map(|((v, m), s)| (v - m) / s));
    }
    Ok(Standardised {
        x: Tensor::from_vec(flat, (rows.len(), d), device)?,
        mean,
        std,
    })
}

/// Fold the standardisation into the weights: w·((x-m)/s)+b = (w/s)·x + (b - Σ w m / s).
fn fold(w: Vec<Vec<f32>>, b: Vec<f32>, s: &Standardised, classes: &[String]) -> LinearHead {
    let mut weights = Vec::with_capacity(w.len());
    let mut bias = Vec::with_capacity(b.len());
    for (row, b0) in w.into_iter().zip(b) {
        let scaled: Vec<f32> = row.iter().zip(&s.std).map(|(w, s)| w / s).collect();
        let shift: f64 = scaled
            .iter()
            .zip(&s.mean)
            .map(|(w, m)| f64::from(*w) * f64::from(*m))
            .sum();
        bias.push((f64::from(b0) - shift) as f32);
        weights.push(scaled);
    }
    LinearHead {
        classes: classes.to_vec(),
        weights,
        bias,
    }
}

/// Full-batch AdamW (candle-nn's) on `loss + l2·|w|²`. `dloss` gives the loss's
/// gradient with respect to the logits in closed form; the weight gradients follow
/// as one matrix product and one column sum. candle's autograd would get the same
/// numbers but accumulates a node's gradient contributions in hash-map order, which
/// changes from run to run in the last bits — and AdamW, dividing by the root of
/// tiny second moments, blows those bits up to 4e-4 in the weights after 300 steps.
fn optimise(
    s: &Standardised,
    classes: usize,
    settings: FitSettings,
    dloss: impl Fn(&Tensor) -> candle_core::Result<Tensor>,
) -> Result<(Vec<Vec<f32>>, Vec<f32>), FitError> {
    let d = s.mean.len();
    let device = s.x.device();
    let w = Var::zeros((classes, d), DType::F32, device)?;
    let b = Var::zeros(classes, DType::F32, device)?;
    let mut opt = AdamW::new(
        vec![w.clone(), b.clone()],
        ParamsAdamW {
            lr: settings.learning_rate,
            weight_decay: 0.0,
            ..Default::default()
        },
    )?;
    for _ in 0..settings.steps {
        let logits =
            s.x.matmul(&w.as_tensor().t()?)?
                .broadcast_add(b.as_tensor())?;
        let dz = dloss(&logits)?;
        let gw = (dz.t()?.matmul(&s.x)? + (w.as_tensor() * (2.0 * settings.l2))?)?;
        let gb = dz.sum(0)?;
        let mut grads = GradStore::default();
        grads.insert(w.as_tensor(), gw);
        grads.insert(b.as_tensor(), gb);
        opt.step(&grads)?;
    }
    Ok((w.as_tensor().to_vec2()?, b.as_tensor().to_vec1()?))
}

/// Multinomial logistic regression: `y[i]` is the class index of row `i`.
pub fn fit_softmax(
    rows: &[Vec<f32>],
    y: &[u32],
    classes: &[String],
    settings: FitSettings,
) -> Result<LinearHead, FitError> {
    // Mean cross-entropy: d/dlogits = (softmax − one-hot) / n.
    let mut onehot = vec![0f32; y.len() * classes.len()];
    for (i, &c) in y.iter().enumerate() {
        onehot[i * classes.len() + c as usize] = 1.0;
    }
    let softmax = candle_nn::ops::softmax_last_dim;
    fit_link(rows, (onehot, y.len()), classes, settings, softmax)
}

/// One independent logistic regression per class: `y[i][c]` says whether row `i` has `c`.
pub fn fit_multilabel(
    rows: &[Vec<f32>],
    y: &[Vec<bool>],
    classes: &[String],
    settings: FitSettings,
) -> Result<LinearHead, FitError> {
    let flat: Vec<f32> = y
        .iter()
        .flat_map(|r| r.iter().map(|&v| if v { 1.0 } else { 0.0 }))
        .collect();
    // Mean over rows of the summed per-class log-losses, so `l2` means the same as
    // above: d/dz = (sigmoid(z) − y) / n.
    fit_link(
        rows,
        (flat, y.len()),
        classes,
        settings,
        candle_nn::ops::sigmoid,
    )
}

/// A head whose loss gradient is (link(z) − target) / n, for `n` rows of targets laid
/// out row by row, one column a class.
fn fit_link(
    rows: &[Vec<f32>],
    (target, n_rows): (Vec<f32>, usize),
    classes: &[String],
    settings: FitSettings,
    link: fn(&Tensor) -> candle_core::Result<Tensor>,
) -> Result<LinearHead, FitError> {
    let device = Device::Cpu;
    let s = standardise(rows, &device)?;
    let target = Tensor::from_vec(target, (n_rows, classes.len()), &device)?;
    let n = n_rows as f64;
    let (w, b) = optimise(&s, classes.len(), settings, |logits| {
        (link(logits)? - &target)? / n
    })?;
    Ok(fold(w, b, &s, classes))
}

/// Linear regression (squared error) onto `y`: one output row.
pub fn fit_linear(
    rows: &[Vec<f32>],
    y: &[f32],
    name: &str,
    settings: FitSettings,
) -> Result<LinearHead, FitError> {
    let device = Device::Cpu;
    let s = standardise(rows, &device)?;
    let target = Tensor::from_vec(y.to_vec(), (y.len(), 1), &device)?;
    // Mean squared error: d/dpred = 2 (pred − y) / n.
    let n = y.len() as f64;
    let (w, b) = optimise(&s, 1, settings, |pred| (pred - &target)? * (2.0 / n))?;
    Ok(fold(w, b, &s, &[name.to_owned()]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("c{i}")).collect()
    }

    #[test]
    fn softmax_fit_separates_separable_classes_and_is_deterministic() {
        // Three clusters on a line, with an offset and a scale the folding must undo.
        let rows: Vec<Vec<f32>> = (0..90)
            .map(|i| vec![100.0 + (i / 30) as f32 * 10.0 + (i % 7) as f32 * 0.3, 5.0])
            .collect();
        let y: Vec<u32> = (0..90).map(|i| (i / 30) as u32).collect();
        let h = fit_softmax(&rows, &y, &names(3), FitSettings::default()).unwrap();
        let acc = rows
            .iter()
            .zip(&y)
            .filter(|(r, c)| feedloop_core::neural::argmax(&h.softmax(r)) == **c as usize)
            .count();
        assert_eq!(acc, 90);
        let again = fit_softmax(&rows, &y, &names(3), FitSettings::default()).unwrap();
        assert_eq!(h.weights, again.weights);
        assert_eq!(h.bias, again.bias);
    }

    #[test]
    fn linear_fit_recovers_a_line() {
        let rows: Vec<Vec<f32>> = (0..50).map(|i| vec![i as f32 / 10.0]).collect();
        let y: Vec<f32> = rows.iter().map(|r| 2.0 * r[0] + 1.0).collect();
        let settings = FitSettings {
            l2: 0.0,
            steps: 2000,
            learning_rate: 0.05,
        };
        let h = fit_linear(&rows, &y, "v", settings).unwrap();
        assert!((h.weights[0][0] - 2.0).abs() < 1e-2, "{:?}", h.weights);
        assert!((h.bias[0] - 1.0).abs() < 5e-2, "{:?}", h.bias);
    }

    #[test]
    fn multilabel_fit_learns_each_label_on_its_own() {
        let rows: Vec<Vec<f32>> = (0..64)
            .map(|i| vec![(i & 1) as f32, ((i >> 1) & 1) as f32, (i % 5) as f32])
            .collect();
        let y: Vec<Vec<bool>> = (0..64)
            .map(|i| vec![i & 1 == 1, (i >> 1) & 1 == 1])
            .collect();
        let h = fit_multilabel(&rows, &y, &names(2), FitSettings::default()).unwrap();
        for (r, t) in rows.iter().zip(&y) {
            let p = h.sigmoid(r);
            assert_eq!(p[0] > 0.5, t[0]);
            assert_eq!(p[1] > 0.5, t[1]);
        }
    }
}
