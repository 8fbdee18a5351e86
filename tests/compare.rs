//! What two runs' stores must agree on: the same feedback records, day counters and
//! profiles (numbers equal to 1e-9 relative, the fold's float sums may be added in
//! another order), the same segment for every customer.

use feedloop_memory::MemoryState;

pub fn assert_same_effects(got: &MemoryState, want: &MemoryState) {
    assert_eq!(got.feedback, want.feedback, "feedback records differ");
    assert_eq!(got.aggregates, want.aggregates, "aggregates differ");
    assert_eq!(
        got.profiles.keys().collect::<Vec<_>>(),
        want.profiles.keys().collect::<Vec<_>>()
    );
    for (id, w) in &want.profiles {
        let g = &got.profiles[id];
        assert_eq!(
            g.value.feedback_count, w.value.feedback_count,
            "{id}: feedback_count"
        );
        let (gv, wv) = (
            serde_json::to_value(&g.value).unwrap(),
            serde_json::to_value(&w.value).unwrap(),
        );
        approx(&gv, &wv, id);
        assert_eq!(g.value.segment(), w.value.segment(), "{id}: segment");
    }
}

pub fn approx(a: &serde_json::Value, b: &serde_json::Value, path: &str) {
    use serde_json::Value;
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            assert!(
                (x - y).abs() <= 1e-9 * (1.0 + x.abs().max(y.abs())),
                "{path}: {x} != {y}"
            );
        }
        (Value::Object(x), Value::Object(y)) => {
            assert_eq!(
                x.keys().collect::<Vec<_>>(),
                y.keys().collect::<Vec<_>>(),
                "{path}"
            );
            for (k, v) in x {
                approx(v, &y[k], &format!("{path}.{k}"));
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            assert_eq!(x.len(), y.len(), "{path}");
            for (i, (p, q)) in x.iter().zip(y).enumerate() {
                approx(p, q, &format!("{path}[{i}]"));
            }
        }
        _ => assert_eq!(a, b, "{path}"),
    }
}

/// Feedback the reference holds that the run lost, and feedback the run's aggregates
/// counted more than once (a lost item cannot have been counted, so it is added back).
pub fn lost_and_double_counted(got: &MemoryState, want: &MemoryState) -> (usize, i64) {
    let lost = want
        .feedback
        .keys()
        .filter(|k| !got.feedback.contains_key(*k))
        .count();
    let counted: i64 = got
        .aggregates
        .values()
        .map(|c| c.get("fb").copied().unwrap_or(0))
        .sum();
    (lost, counted - want.feedback.len() as i64 + lost as i64)
}
