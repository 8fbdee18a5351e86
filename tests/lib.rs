//! Shared helpers for the cross-crate integration tests.

use std::path::PathBuf;

/// Where the labelled eval sets live: `$FEEDLOOP_EVAL_DIR`, else `../shared/eval` next
/// to the workspace (the layout of the development machines and CI).
pub fn eval_dir() -> Option<PathBuf> {
    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let candidates = [
        std::env::var_os("FEEDLOOP_EVAL_DIR").map(PathBuf::from),
        Some(workspace.join("../shared/eval")),
        Some(PathBuf::from("/work/shared/eval")),
    ];
    candidates
        .into_iter()
        .flatten()
        .find(|p| p.join("sentiment").is_dir())
}

pub fn load_records(path: &std::path::Path) -> Vec<feedloop_core::eval::Record> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("eval rows follow the documented shape"))
        .collect()
}
