//! Ocelot's detection engine over OCSF Arrow batches: Sigma rules (compiled to one
//! regex-automata automaton per field), their correlations, and OCSF Detection Findings.

pub mod fields;
pub mod rule;
pub mod sigma;

pub use rule::{Attack, RuleMeta, Severity};
pub use sigma::{Hit, LoadOptions, SigmaSet};
