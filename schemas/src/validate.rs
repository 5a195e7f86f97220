//! Checks an OCSF event against its class: required attributes present, types right, enum ids
//! known (99 = Other is always allowed), no attribute the class and its profiles do not define
//! (outside `unmapped`), and the classification ids consistent with each other.

use std::collections::BTreeMap;

use arrow::array::RecordBatch;
use serde_json::Value;

use crate::ocsf::{AttrType, Attribute, ClassDef, Requirement, Scalar, Schema};

#[derive(Debug, Clone, PartialEq)]
pub struct Violation {
    pub path: String,
    pub problem: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.problem)
    }
}

/// Validates one OCSF event (JSON) against `class`; an empty result means valid.
pub fn validate_event(schema: &Schema, class: &ClassDef, event: &Value) -> Vec<Violation> {
    let mut out = Vec::new();
    let Some(obj) = event.as_object() else {
        out.push(Violation { path: String::new(), problem: "an event must be a JSON object".into() });
        return out;
    };
    let profiles: Vec<&str> = obj.get("metadata").and_then(|m| m.get("profiles")).and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).collect();
    check_object(schema, &class.attributes, obj, "", &profiles, &mut out);
    let int = |k: &str| obj.get(k).and_then(Value::as_i64);
    if int("class_uid") != Some(class.uid as i64) {
        out.push(Violation { path: "class_uid".into(), problem: format!("expected {} for {}", class.uid, class.name) });
    }
    if let Some(c) = int("category_uid").filter(|c| *c != class.category_uid as i64) {
        out.push(Violation { path: "category_uid".into(), problem: format!("{c}, expected {}", class.category_uid) });
    }
    if let (Some(t), Some(a)) = (int("type_uid"), int("activity_id")) {
        if t != class.uid as i64 * 100 + a {
            out.push(Violation { path: "type_uid".into(), problem: format!("{t} is not class_uid * 100 + activity_id") });
        }
    }
    out
}

/// Validates every row of a batch of `class` (rows are read back as JSON with arrow-json, so
/// this checks what a consumer of the batch sees).
pub fn validate_batch(schema: &Schema, class: &ClassDef, batch: &RecordBatch) -> Result<Vec<(usize, Violation)>, arrow::error::ArrowError> {
    let mut out = Vec::new();
    for (row, event) in batch_to_json(batch)?.iter().enumerate() {
        out.extend(validate_event(schema, class, event).into_iter().map(|v| (row, v)));
    }
    Ok(out)
}

/// Rows of a batch as JSON objects (nulls left out, as OCSF JSON does).
pub fn batch_to_json(batch: &RecordBatch) -> Result<Vec<Value>, arrow::error::ArrowError> {
    let mut buf = Vec::new();
    let mut w = arrow::json::ArrayWriter::new(&mut buf);
    w.write(batch)?;
    w.finish()?;
    if buf.is_empty() {
        return Ok(Vec::new());
    }
    match serde_json::from_slice(&buf) {
        Ok(Value::Array(rows)) => Ok(rows),
        Ok(_) => Ok(Vec::new()),
        Err(e) => Err(arrow::error::ArrowError::JsonError(e.to_string())),
    }
}

/// `profiles`: those the event declares in `metadata.profiles`; a profile's required
/// attributes are required only of events that declare it.
fn check_object(schema: &Schema, attrs: &BTreeMap<String, Attribute>, obj: &serde_json::Map<String, Value>, prefix: &str, profiles: &[&str], out: &mut Vec<Violation>) {
    let path = |k: &str| if prefix.is_empty() { k.to_string() } else { format!("{prefix}.{k}") };
    for (k, a) in attrs {
        let applies = a.profile.as_deref().is_none_or(|p| profiles.contains(&p));
        if a.requirement == Requirement::Required && applies && obj.get(k).is_none_or(Value::is_null) {
            out.push(Violation { path: path(k), problem: "required attribute missing".into() });
        }
    }
    for (k, v) in obj {
        if v.is_null() || k == "unmapped" {
            continue;
        }
        let Some(a) = attrs.get(k) else {
            // `<timestamp>_dt` siblings come with the datetime profile.
            let dt_base = k.strip_suffix("_dt").and_then(|b| attrs.get(b));
            match dt_base {
                Some(b) if b.ty == AttrType::Scalar(Scalar::Timestamp) => {
                    if !v.is_string() {
                        out.push(Violation { path: path(k), problem: "a datetime must be an RFC 3339 string".into() });
                    }
                }
                _ => out.push(Violation { path: path(k), problem: "attribute not defined by this class/object or its profiles".into() }),
            }
            continue;
        };
        if a.is_array {
            match v.as_array() {
                Some(items) => items.iter().enumerate().for_each(|(i, item)| check_value(schema, a, item, &format!("{}[{i}]", path(k)), profiles, out)),
                None => out.push(Violation { path: path(k), problem: "expected an array".into() }),
            }
        } else {
            check_value(schema, a, v, &path(k), profiles, out);
        }
    }
}

fn check_value(schema: &Schema, a: &Attribute, v: &Value, path: &str, profiles: &[&str], out: &mut Vec<Violation>) {
    let bad = |out: &mut Vec<Violation>, want: &str| out.push(Violation { path: path.to_string(), problem: format!("expected {want} ({}), got {v}", a.type_name) });
    match &a.ty {
        AttrType::Object(name) => match (v.as_object(), schema.attributes_of(name)) {
            (Some(o), Some(attrs)) => check_object(schema, attrs, o, path, profiles, out),
            (None, _) => bad(out, "an object"),
            (_, None) => out.push(Violation { path: path.into(), problem: format!("unknown object type {name}") }),
        },
        AttrType::Scalar(s) => {
            let ok = match s {
                Scalar::String => v.is_string(),
                Scalar::Integer => v.as_i64().is_some_and(|i| i32::try_from(i).is_ok()),
                Scalar::Long | Scalar::Timestamp => v.is_i64() || v.is_u64(),
                Scalar::Float => v.is_number(),
                Scalar::Boolean => v.is_boolean(),
                Scalar::Datetime => v.is_string(),
                Scalar::Json => true,
            };
            if !ok {
                return bad(out, "a value of the right type");
            }
            // The classification uids are checked against the class in `validate_event`; the
            // schema lists only their placeholder values.
            let classification = matches!(a.name.as_str(), "class_uid" | "category_uid" | "type_uid");
            if let (Some(values), Some(id), false) = (&a.enum_values, v.as_i64(), classification) {
                if !values.contains_key(&id) && id != 99 {
                    out.push(Violation { path: path.into(), problem: format!("{id} is not a known value of {}", a.name) });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ocsf::schema;
    use serde_json::json;

    fn valid_api_activity() -> Value {
        json!({
            "activity_id": 1, "activity_name": "Create", "category_uid": 6, "class_uid": 6003, "type_uid": 600301,
            "severity_id": 1, "time": 1695334972000i64, "time_dt": "2023-09-21T22:22:52Z",
            "metadata": {"product": {"name": "CloudTrail", "vendor_name": "AWS"}, "version": "1.8.0", "profiles": ["cloud", "datetime"]},
            "actor": {"user": {"name": "alice"}}, "api": {"operation": "CreateUser"},
            "cloud": {"provider": "AWS"}, "src_endpoint": {"ip": "192.0.2.1"},
            "unmapped": {"anything": {"goes": 1}}
        })
    }

    #[test]
    fn a_good_event_passes() {
        let s = schema();
        let v = validate_event(s, s.class("api_activity").unwrap(), &valid_api_activity());
        assert!(v.is_empty(), "{v:?}");
    }

    #[test]
    fn each_kind_of_mistake_is_reported() {
        let s = schema();
        let class = s.class("api_activity").unwrap();
        let cases: Vec<(&str, Box<dyn Fn(&mut Value)>)> = vec![
            ("api.operation", Box::new(|e| { e["api"].as_object_mut().unwrap().remove("operation"); })),
            ("activity_id", Box::new(|e| e["activity_id"] = json!("Create"))),
            ("activity_id", Box::new(|e| e["activity_id"] = json!(42))),
            ("actor.user.shoe_size", Box::new(|e| e["actor"]["user"]["shoe_size"] = json!(44))),
            ("class_uid", Box::new(|e| e["class_uid"] = json!(3002))),
            ("type_uid", Box::new(|e| e["type_uid"] = json!(600302))),
            ("cloud", Box::new(|e| { e.as_object_mut().unwrap().remove("cloud"); })),
            ("src_endpoint.port", Box::new(|e| e["src_endpoint"]["port"] = json!(1u64 << 40))),
        ];
        for (path, break_it) in cases {
            let mut e = valid_api_activity();
            break_it(&mut e);
            let v = validate_event(s, class, &e);
            assert!(v.iter().any(|x| x.path == path), "{path}: {v:?}");
        }
        // 99 = Other is always allowed.
        let mut e = valid_api_activity();
        e["activity_id"] = json!(99);
        e["type_uid"] = json!(600399);
        assert!(validate_event(s, class, &e).is_empty());
    }
}
