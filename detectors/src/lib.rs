//! Ocelot's detection engine over OCSF Arrow batches: Sigma rules (compiled to one
//! regex-automata automaton per field), their correlations, and OCSF Detection Findings.

pub mod agent_link;
pub mod behaviour;
pub mod detector;
pub mod engine;
pub mod event;
pub mod fields;
pub mod finding;
pub mod pattern;
pub mod rule;
pub mod sigma;
pub mod sql;

pub use detector::Detector;
pub use engine::{Engine, EngineOptions, RuleSets, Stats};
pub use finding::Finding;
pub use rule::{Attack, RuleMeta, Severity};
pub use sigma::{Hit, LoadOptions, SigmaSet};

include!(concat!(env!("OUT_DIR"), "/shipped_rules.rs"));
