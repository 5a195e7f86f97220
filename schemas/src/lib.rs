//! OCSF as the contract: the vendored schema, the Arrow projection of each class, a writer
//! that appends events straight into a class's Arrow builders, and an event validator.
//! Knows nothing of AWS or any other source.

pub mod ocsf;
pub mod projection;
pub mod validate;
pub mod writer;

pub use ocsf::{schema, schema_1_1, AttrType, Attribute, ClassDef, Requirement, Scalar, Schema, OCSF_VERSION};
pub use projection::{leaf_paths, project, ProjectionError};
pub use validate::{batch_to_json, validate_batch, validate_event, Violation};
pub use writer::{BatchWriter, BoolCol, F64Col, I32Col, I64Col, ListCol, StrCol, TsCol, WriterError};
