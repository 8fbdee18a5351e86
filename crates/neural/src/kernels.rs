//! The encoder's arithmetic on row-major `f32` slices. Matrix products go to `gemm`
//! (the kernels candle itself uses, with runtime AVX2/FMA dispatch); the element-wise
//! steps are fused loops the compiler vectorises, one pass over memory each.

// gemm's API is raw pointers and strides; each call says why its bounds hold.
#![allow(unsafe_code)]

use std::ops::Range;

use gemm::{gemm, Parallelism};

/// A linear layer as stored by PyTorch: `w` is `n_out × n_in`, row-major.
pub struct Dense {
    pub w: Vec<f32>,
    pub b: Vec<f32>,
    pub n_in: usize,
    pub n_out: usize,
}

impl Dense {
    /// Layers over the same input stacked into one (outputs one after another): query,
    /// key and value become one matrix product per layer.
    pub fn stacked(parts: [Dense; 3]) -> Dense {
        let n_in = parts[0].n_in;
        let n_out = parts.iter().map(|p| p.n_out).sum();
        let (w, b) = parts
            .into_iter()
            .map(|p| (p.w, p.b))
            .unzip::<_, _, Vec<_>, Vec<_>>();
        Dense {
            w: w.concat(),
            b: b.concat(),
            n_in,
            n_out,
        }
    }
}

/// `x · wᵀ + b (+ residual)` for `rows` rows of `x`.
pub fn dense(x: &[f32], rows: usize, layer: &Dense, residual: Option<&[f32]>) -> Vec<f32> {
    let (k, n) = (layer.n_in, layer.n_out);
    assert_eq!(x.len(), rows * k, "input is not rows × n_in");
    assert_eq!(layer.w.len(), n * k, "weights are not n_out × n_in");
    let mut y: Vec<f32> = Vec::with_capacity(rows * n);
    match residual {
        Some(r) => {
            assert_eq!(r.len(), rows * n, "residual is not rows × n_out");
            for row in r.chunks_exact(n) {
                y.extend(row.iter().zip(&layer.b).map(|(a, b)| a + b));
            }
        }
        None => {
            for _ in 0..rows {
                y.extend_from_slice(&layer.b);
            }
        }
    }
    if rows == 0 {
        return y;
    }
    // SAFETY: y is rows × n, x is rows × k and w is n × k (asserted above); wᵀ is read
    // through strides (element (i, o) of wᵀ is w[o·k + i]), and no pointer outlives
    // this call.
    unsafe {
        gemm(
            rows,
            n,
            k,
            y.as_mut_ptr(),
            1,
            n as isize,
            true,
            x.as_ptr(),
            1,
            k as isize,
            layer.w.as_ptr(),
            k as isize,
            1,
            1.0,
            1.0,
            false,
            false,
            false,
            Parallelism::None,
        );
    }
    y
}

/// Multi-head self-attention over texts packed back to back. `qkv` holds each token's
/// query, key and value (`3·d` per row); `rows[i]` is text `i`'s token rows; no text
/// sees another, so no padding and no mask are needed. Returns the `tokens × d` context.
pub fn self_attention(qkv: &[f32], rows: &[Range<usize>], d: usize, heads: usize) -> Vec<f32> {
    let tokens = qkv.len() / (3 * d);
    assert_eq!(qkv.len(), tokens * 3 * d, "qkv is not tokens × 3d");
    assert!(
        rows.iter().all(|r| r.end <= tokens),
        "rows beyond the tokens"
    );
    let hd = d / heads;
    let scale = 1.0 / (hd as f32).sqrt();
    let mut ctx = vec![0.0f32; tokens * d];
    let mut scores: Vec<f32> = Vec::new();
    let stride = 3 * d as isize;
    for r in rows {
        let len = r.len();
        if len == 0 {
            continue;
        }
        scores.clear();
        scores.resize(len * len, 0.0);
        for h in 0..heads {
            let q = r.start * 3 * d + h * hd;
            let (k, v) = (q + d, q + 2 * d);
            // SAFETY: every read stays inside text r's rows of qkv: row t of head h's
            // query/key/value starts at (r.start + t)·3d + {0, d, 2d} + h·hd and spans
            // hd < d values; scores is len × len; the context block written is rows
            // r of ctx, columns h·hd .. (h+1)·hd.
            unsafe {
                // scores = q_h · k_hᵀ · scale
                gemm(
                    len,
                    len,
                    hd,
                    scores.as_mut_ptr(),
                    1,
                    len as isize,
                    false,
                    qkv.as_ptr().add(q),
                    1,
                    stride,
                    qkv.as_ptr().add(k),
                    stride,
                    1,
                    0.0,
                    scale,
                    false,
                    false,
                    false,
                    Parallelism::None,
                );
            }
            for row in scores.chunks_exact_mut(len) {
                softmax(row);
            }
            unsafe {
                // ctx_h = softmax(scores) · v_h
                gemm(
                    len,
                    hd,
                    len,
                    ctx.as_mut_ptr().add(r.start * d + h * hd),
                    1,
                    d as isize,
                    false,
                    scores.as_ptr(),
                    1,
                    len as isize,
                    qkv.as_ptr().add(v),
                    1,
                    stride,
                    0.0,
                    1.0,
                    false,
                    false,
                    false,
                    Parallelism::None,
                );
            }
        }
    }
    ctx
}

fn softmax(row: &mut [f32]) {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0;
    for v in row.iter_mut() {
        *v = exp(*v - max);
        sum += *v;
    }
    let inv = 1.0 / sum;
    row.iter_mut().for_each(|v| *v *= inv);
}

/// In place, per row of `d`: `(x − mean) / sqrt(var + eps) · gamma + beta`.
pub fn layer_norm(x: &mut [f32], d: usize, gamma: &[f32], beta: &[f32], eps: f32) {
    for row in x.chunks_exact_mut(d) {
        let mean = row.iter().sum::<f32>() / d as f32;
        let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / d as f32;
        let inv = 1.0 / (var + eps).sqrt();
        for ((v, g), b) in row.iter_mut().zip(gamma).zip(beta) {
            *v = (*v - mean) * inv * g + b;
        }
    }
}

/// BERT's exact GELU, `x/2 · (1 + erf(x/√2))`, in place.
pub fn gelu_erf(x: &mut [f32]) {
    for v in x.iter_mut() {
        *v = 0.5 * *v * (1.0 + erf(*v * std::f32::consts::FRAC_1_SQRT_2));
    }
}

/// erf to within 1.5e-7 (Abramowitz & Stegun 7.1.26), branch-free so the loop above
/// vectorises; libm's scalar erff was a tenth of the encoder's time.
#[inline(always)]
fn erf(x: f32) -> f32 {
    let a = x.abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * a);
    let poly = t
        * (0.254_829_6
            + t * (-0.284_496_74 + t * (1.421_413_7 + t * (-1.453_152 + t * 1.061_405_4))));
    (1.0 - poly * exp(-a * a)).copysign(x)
}

/// e^x to about 2e-7 relative for x ≤ 0 down to −87 (used for softmax and erf only):
/// 2^n · p(r) with r in ±ln2/2 and a degree-6 polynomial, rounded with the 1.5·2²³
/// trick so no libm call stops vectorisation.
#[inline(always)]
fn exp(x: f32) -> f32 {
    let x = x.clamp(-87.0, 88.0);
    const ROUND: f32 = 12_582_912.0;
    let n = (x * std::f32::consts::LOG2_E + ROUND) - ROUND;
    let r = x - n * 0.693_145_75 - n * 1.428_606_8e-6;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0))))));
    p * f32::from_bits(((n as i32 + 127) as u32) << 23)
}

/// The L2-normalised mean of the rows of `states` (`tokens × d`) for which `keep(t)`
/// holds; `None` when none does.
pub fn mean_pool(states: &[f32], d: usize, keep: impl Fn(usize) -> bool) -> Option<Vec<f32>> {
    let mut sum = vec![0.0f32; d];
    let mut count = 0usize;
    for (t, row) in states.chunks_exact(d).enumerate() {
        if keep(t) {
            sum.iter_mut().zip(row).for_each(|(s, v)| *s += v);
            count += 1;
        }
    }
    if count == 0 {
        return None;
    }
    let n = count as f32;
    sum.iter_mut().for_each(|s| *s /= n);
    let norm = sum.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
    sum.iter_mut().for_each(|s| *s /= norm);
    Some(sum)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_and_erf_match_the_standard_library() {
        let mut worst_exp: f32 = 0.0;
        for i in -8000..=0 {
            let x = i as f32 / 100.0;
            let want = x.exp();
            worst_exp = worst_exp.max(((exp(x) - want) / want).abs());
        }
        let mut worst_erf: f64 = 0.0;
        for i in -3000..=3000 {
            let z = i as f64 / 1000.0;
            worst_erf = worst_erf.max((erf(z as f32) as f64 - taylor_erf(z)).abs());
        }
        assert!(worst_exp < 1e-6, "exp relative error {worst_exp}");
        assert!(worst_erf < 5e-7, "erf absolute error {worst_erf}");
        assert!((erf(5.0) - 1.0).abs() < 1e-6 && (erf(-9.0) + 1.0).abs() < 1e-6);
    }

    /// erf by its Taylor series in f64 (for |x| ≤ 3 the cancellation costs < 1e-12).
    fn taylor_erf(x: f64) -> f64 {
        let (mut term, mut sum) = (x, x);
        for k in 1..120 {
            term *= -x * x / k as f64;
            sum += term / (2 * k + 1) as f64;
        }
        sum * 2.0 / std::f64::consts::PI.sqrt()
    }

    #[test]
    fn dense_is_x_times_w_transposed_plus_bias_and_residual() {
        let layer = Dense {
            w: vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], // 2 × 3
            b: vec![0.5, -0.5],
            n_in: 3,
            n_out: 2,
        };
        let x = [1.0, 0.0, -1.0, 2.0, 1.0, 0.0]; // 2 × 3
        let y = dense(&x, 2, &layer, Some(&[10.0, 20.0, 30.0, 40.0]));
        assert_eq!(
            y,
            vec![
                10.0 + 0.5 - 2.0,
                20.0 - 0.5 - 2.0,
                30.0 + 0.5 + 4.0,
                40.0 - 0.5 + 13.0
            ]
        );
    }

    #[test]
    fn a_text_attends_only_to_itself() {
        // Two one-head texts of 1 and 2 tokens, d = 2: a one-token text's context is
        // its own value whatever the other text holds.
        let (d, heads) = (2, 1);
        let qkv = vec![
            1.0, 0.0, 1.0, 0.0, 7.0, 8.0, // text 0, token 0: q k v
            0.0, 1.0, 0.0, 1.0, 1.0, 1.0, // text 1, token 0
            0.0, 1.0, 0.0, 9.0, 3.0, 3.0, // text 1, token 1
        ];
        let ctx = self_attention(&qkv, &[0..1, 1..3], d, heads);
        assert_eq!(&ctx[..2], &[7.0, 8.0]);
        // text 1, token 0 attends mostly to token 1 (score 9/√2 vs 1/√2)
        assert!(ctx[2] > 2.9 && ctx[2] < 3.0, "{ctx:?}");
    }
}
