//! feedloop's pure core: no AWS, no async runtime, no I/O beyond what callers hand in.

pub mod analysis;
pub mod envelope;
pub mod eval;
pub mod followup;
pub mod keys;
pub mod keywords;
pub mod language;
pub mod lines;
pub mod neural;
pub mod nps;
pub mod pii;
pub mod profile;
pub mod records;
pub mod reports;
pub mod sentiment;
pub mod text;
pub mod themes;
