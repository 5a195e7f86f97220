//! The Arrow schema of an OCSF class: a projection, not the whole tree (see DESIGN.md).
//!
//! A class expanded fully has thousands of leaves, most of which no source fills. The
//! projection keeps:
//! - every attribute OCSF marks `required` or `recommended`, recursively, down to
//!   [`MAX_DEPTH`] levels of nesting (deprecated attributes, and those of profiles, which
//!   apply only to events that declare the profile, are left out unless requested);
//! - every attribute path a shipped normalizer writes (any depth), given by the caller;
//! - the caption sibling of every enum id it keeps (`activity_id` -> `activity_name`);
//! - `time_dt` (datetime profile) beside `time`, and `<name>_dt` for any requested path.
//!
//! Names, nesting and types are OCSF's own: objects are structs, arrays lists, `timestamp_t`
//! is Int64 epoch milliseconds, `datetime_t` an Arrow timestamp (ms, UTC), `json_t`/`object`
//! (including `unmapped`) a JSON string.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Fields, Schema as ArrowSchema, SchemaRef, TimeUnit};

use crate::ocsf::{AttrType, Attribute, ClassDef, Requirement, Scalar, Schema};

/// How deep required/recommended attributes are expanded (top-level attributes are depth 1).
pub const MAX_DEPTH: usize = 3;

#[derive(Debug, thiserror::Error)]
#[error("projection of {class}: path `{path}` is not an OCSF attribute ({why})")]
pub struct ProjectionError {
    pub class: String,
    pub path: String,
    pub why: String,
}

/// A tree of wanted attribute names, built from the requested paths.
#[derive(Default, Debug)]
struct Wanted(BTreeMap<String, Wanted>);

impl Wanted {
    fn insert(&mut self, path: &str) {
        let mut node = self;
        for part in path.split('.') {
            node = node.0.entry(part.to_string()).or_default();
        }
    }
}

/// Builds the Arrow schema of `class`, keeping `paths` (dotted OCSF paths such as
/// `actor.user.account.uid`; a path through an array names the array, e.g. `resources.uid`).
pub fn project(schema: &Schema, class: &ClassDef, paths: &[&str]) -> Result<SchemaRef, ProjectionError> {
    let mut wanted = Wanted::default();
    wanted.insert("time_dt");
    for p in paths {
        wanted.insert(p);
    }
    let ctx = Ctx { schema, class: &class.name };
    let fields = ctx.fields(&class.attributes, &wanted, 1, "")?;
    let mut meta = std::collections::HashMap::new();
    meta.insert("ocsf.class_uid".to_string(), class.uid.to_string());
    meta.insert("ocsf.class_name".to_string(), class.name.clone());
    meta.insert("ocsf.version".to_string(), schema.version.clone());
    Ok(Arc::new(ArrowSchema::new_with_metadata(fields, meta)))
}

struct Ctx<'a> {
    schema: &'a Schema,
    class: &'a str,
}

impl Ctx<'_> {
    fn fields(&self, attrs: &BTreeMap<String, Attribute>, wanted: &Wanted, depth: usize, prefix: &str) -> Result<Vec<Field>, ProjectionError> {
        let err = |path: &str, why: &str| ProjectionError { class: self.class.to_string(), path: format!("{prefix}{path}"), why: why.to_string() };
        // Which attributes to keep, and which requested sub-paths go with each.
        let mut keep: BTreeMap<&str, Option<&Wanted>> = BTreeMap::new();
        for (name, a) in attrs {
            // Profile attributes count only where a normalizer writes them: a profile applies to
            // an event only when its metadata.profiles names it.
            if a.requirement >= Requirement::Recommended && !a.deprecated && a.profile.is_none() && depth <= MAX_DEPTH {
                keep.insert(name, None);
            }
        }
        for (name, sub) in &wanted.0 {
            if let Some(base) = name.strip_suffix("_dt").filter(|b| !attrs.contains_key(name.as_str()) && attrs.contains_key(*b)) {
                if attrs[base].ty != AttrType::Scalar(Scalar::Timestamp) {
                    return Err(err(name, "a _dt sibling needs a timestamp_t attribute"));
                }
                keep.entry(base).or_insert(None);
                continue;
            }
            if !attrs.contains_key(name.as_str()) {
                return Err(err(name, "not defined here"));
            }
            keep.insert(name, Some(sub));
        }
        // Caption siblings of kept enums.
        let siblings: Vec<&str> = keep.keys().filter_map(|k| attrs[*k].sibling.as_deref()).filter(|s| attrs.contains_key(*s)).collect();
        for s in siblings {
            keep.entry(s).or_insert(None);
        }

        let mut out = Vec::new();
        for (name, sub) in keep {
            let a = &attrs[name];
            let data_type = match &a.ty {
                AttrType::Scalar(s) => scalar_type(*s),
                AttrType::Object(obj) => {
                    let def = self.schema.attributes_of(obj).ok_or_else(|| err(name, "unknown object type"))?;
                    let empty = Wanted::default();
                    let children = self.fields(def, sub.unwrap_or(&empty), depth + 1, &format!("{prefix}{name}."))?;
                    if children.is_empty() {
                        continue; // an object with nothing kept inside is left out, not an empty struct
                    }
                    DataType::Struct(Fields::from(children))
                }
            };
            if sub.is_some_and(|s| !s.0.is_empty()) && !matches!(a.ty, AttrType::Object(_)) {
                return Err(err(name, "a scalar has no sub-attributes"));
            }
            let data_type = if a.is_array { DataType::List(Arc::new(Field::new("item", data_type, true))) } else { data_type };
            out.push(Field::new(name, data_type, true));
            let dt = format!("{name}_dt");
            if wanted.0.contains_key(&dt) && !attrs.contains_key(&dt) {
                out.push(Field::new(dt, scalar_type(Scalar::Datetime), true));
            }
        }
        Ok(out)
    }
}

/// The Arrow type of an OCSF scalar.
pub fn scalar_type(s: Scalar) -> DataType {
    match s {
        Scalar::String | Scalar::Json => DataType::Utf8,
        Scalar::Integer => DataType::Int32,
        Scalar::Long | Scalar::Timestamp => DataType::Int64,
        Scalar::Float => DataType::Float64,
        Scalar::Boolean => DataType::Boolean,
        Scalar::Datetime => DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
    }
}

/// Every leaf path of an Arrow schema with its type, `a.b.c` style (lists add no segment).
pub fn leaf_paths(schema: &ArrowSchema) -> Vec<(String, DataType)> {
    fn walk(prefix: &str, f: &Field, out: &mut Vec<(String, DataType)>) {
        let path = if prefix.is_empty() { f.name().clone() } else { format!("{prefix}.{}", f.name()) };
        match f.data_type() {
            DataType::Struct(children) => children.iter().for_each(|c| walk(&path, c, out)),
            DataType::List(item) => match item.data_type() {
                DataType::Struct(children) => children.iter().for_each(|c| walk(&path, c, out)),
                _ => out.push((path, f.data_type().clone())),
            },
            other => out.push((path, other.clone())),
        }
    }
    let mut out = Vec::new();
    for f in schema.fields() {
        walk("", f, &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ocsf::schema;

    fn field<'a>(s: &'a ArrowSchema, path: &str) -> Option<&'a Field> {
        let mut parts = path.split('.');
        let mut f = s.field_with_name(parts.next()?).ok()?;
        for p in parts {
            let fields = match f.data_type() {
                DataType::Struct(c) => c,
                DataType::List(i) => match i.data_type() {
                    DataType::Struct(c) => c,
                    _ => return None,
                },
                _ => return None,
            };
            f = fields.iter().find(|c| c.name() == p)?;
        }
        Some(f)
    }

    #[test]
    fn keeps_required_recommended_and_requested_paths() {
        let s = schema();
        let class = s.class("api_activity").unwrap();
        let p = project(s, class, &["actor.user.account.uid", "api.request.data", "resources.uid", "actor.session.created_time_dt", "unmapped", "cloud.region"]).unwrap();
        for path in [
            "time",
            "time_dt",
            "class_uid",
            "activity_id",
            "activity_name",
            "severity_id",
            "metadata.product.name",
            "actor.user.name",
            "actor.user.account.uid",
            "api.operation",
            "api.request.data",
            "cloud.region",
            "src_endpoint.ip",
            "resources.uid",
            "unmapped",
            "actor.session.created_time_dt",
        ] {
            assert!(field(&p, path).is_some(), "{path} missing");
        }
        assert_eq!(field(&p, "time").unwrap().data_type(), &DataType::Int64);
        assert!(matches!(field(&p, "time_dt").unwrap().data_type(), DataType::Timestamp(TimeUnit::Millisecond, _)));
        assert_eq!(field(&p, "activity_id").unwrap().data_type(), &DataType::Int32);
        assert!(matches!(field(&p, "resources").unwrap().data_type(), DataType::List(_)));
        assert_eq!(field(&p, "unmapped").unwrap().data_type(), &DataType::Utf8);
        // Optional attributes nobody asked for stay out.
        assert!(field(&p, "raw_data").is_none());
        assert!(field(&p, "count").is_none());
        assert!(field(&p, "osint").is_none(), "profile attributes only when written");
        // Bounded: a few hundred leaves, not thousands.
        let n = leaf_paths(&p).len();
        assert!((50..1000).contains(&n), "{n} leaves");
    }

    #[test]
    fn rejects_paths_outside_ocsf() {
        let s = schema();
        let e = project(s, s.class("api_activity").unwrap(), &["actor.user.shoe_size"]).unwrap_err();
        assert_eq!(e.path, "actor.user.shoe_size");
        assert!(project(s, s.class("api_activity").unwrap(), &["time.x"]).is_err());
    }
}
