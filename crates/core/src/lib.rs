//! feedloop's pure core: no AWS, no async runtime, no I/O beyond what callers hand in.

pub mod envelope;
pub mod text;
pub mod sentiment;
pub mod themes;
pub mod language;
pub mod pii;
