//! Sentiment scoring: the VADER reference and feedloop's tuned mode.

pub mod vader;

pub use vader::{PolarityScores, Vader};
