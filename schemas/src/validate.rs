//! Checks an OCSF event against its class by the schema's own rules, at every depth:
//! - required attributes present (those of a profile only where the event lists the profile);
//! - no attribute the class or object does not define (outside `unmapped`), and an attribute that
//!   only a profile defines (`cloud`, `actor` of a finding, `message_context`, any `*_dt`) only
//!   when `metadata.profiles` lists that profile;
//! - types (integer vs long vs float vs boolean vs string), the ranges the types set (`port_t`),
//!   enum ids among the values the schema lists;
//! - `constraints` of classes and objects (`at_least_one`, `just_one`), dot paths included;
//! - the classification ids consistent with each other (`type_uid` = class_uid * 100 + activity);
//! - each observable's `name` an attribute path of the class that the event carries.

use std::collections::BTreeMap;

use arrow::array::RecordBatch;
use serde_json::{Map, Value};

use crate::ocsf::{AttrType, Attribute, ClassDef, Constraints, Requirement, Scalar, Schema};

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
    let Some(obj) = event.as_object() else {
        return vec![Violation { path: String::new(), problem: "an event must be a JSON object".into() }];
    };
    let profiles: Vec<&str> = obj.get("metadata").and_then(|m| m.get("profiles")).and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).collect();
    let mut c = Check { schema, profiles, out: Vec::new() };
    c.object(&class.attributes, &class.constraints, obj, "");
    let int = |k: &str| obj.get(k).and_then(Value::as_i64);
    if int("class_uid") != Some(class.uid as i64) {
        c.report("class_uid", format!("expected {} for {}", class.uid, class.name));
    }
    if let Some(cat) = int("category_uid").filter(|cat| *cat != class.category_uid as i64) {
        c.report("category_uid", format!("{cat}, expected {}", class.category_uid));
    }
    if let (Some(t), Some(a)) = (int("type_uid"), int("activity_id"))
        && t != class.uid as i64 * 100 + a
    {
        c.report("type_uid", format!("{t} is not class_uid * 100 + activity_id"));
    }
    c.observables(class, obj);
    c.out
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

struct Check<'a> {
    schema: &'a Schema,
    /// Those the event lists in `metadata.profiles`.
    profiles: Vec<&'a str>,
    out: Vec<Violation>,
}

fn join(prefix: &str, k: &str) -> String {
    if prefix.is_empty() {
        k.to_string()
    } else {
        format!("{prefix}.{k}")
    }
}

fn present(v: Option<&Value>) -> bool {
    v.is_some_and(|v| !v.is_null())
}

impl<'a> Check<'a> {
    fn report(&mut self, path: impl Into<String>, problem: impl Into<String>) {
        self.out.push(Violation { path: path.into(), problem: problem.into() });
    }

    fn listed(&self, profile: &str) -> bool {
        self.profiles.contains(&profile)
    }

    fn object(&mut self, attrs: &BTreeMap<String, Attribute>, constraints: &Constraints, obj: &Map<String, Value>, prefix: &str) {
        for (k, a) in attrs {
            let applies = a.profile.as_deref().is_none_or(|p| self.listed(p));
            if a.requirement == Requirement::Required && applies && !present(obj.get(k)) {
                self.report(join(prefix, k), "required attribute missing");
            }
        }
        self.constraints(constraints, obj, prefix);
        for (k, v) in obj {
            if v.is_null() || k == "unmapped" {
                continue;
            }
            let path = join(prefix, k);
            let Some(a) = attrs.get(k) else {
                // `<timestamp>_dt` siblings come with the datetime profile.
                match k.strip_suffix("_dt").and_then(|b| attrs.get(b)) {
                    Some(b) if b.ty == AttrType::Scalar(Scalar::Timestamp) => {
                        if !self.listed("datetime") {
                            self.report(path, "a `_dt` attribute needs the datetime profile in metadata.profiles");
                        } else if !v.as_str().is_some_and(is_rfc3339) {
                            self.report(path, format!("a datetime must be an RFC 3339 string, got {v}"));
                        }
                    }
                    _ => self.report(path, "attribute not defined by this class/object or its profiles"),
                }
                continue;
            };
            if let Some(p) = a.profile.as_deref().filter(|p| !self.listed(p)) {
                self.report(path.clone(), format!("defined by the {p} profile, which metadata.profiles does not list"));
            }
            if a.is_array {
                match v.as_array() {
                    Some(items) => items.iter().enumerate().for_each(|(i, item)| self.value(a, item, &format!("{path}[{i}]"))),
                    None => self.report(path, "expected an array"),
                }
            } else {
                self.value(a, v, &path);
            }
        }
    }

    fn constraints(&mut self, c: &Constraints, obj: &Map<String, Value>, prefix: &str) {
        let has = |name: &str| {
            let mut cur = Some(obj);
            let mut last = None;
            for seg in name.split('.') {
                last = cur.and_then(|o| o.get(seg));
                cur = last.and_then(Value::as_object);
            }
            present(last)
        };
        if !c.at_least_one.is_empty() && !c.at_least_one.iter().any(|n| has(n)) {
            let at = if prefix.is_empty() { "(event)".to_string() } else { prefix.to_string() };
            self.report(at, format!("constraint at_least_one: needs one of {}", c.at_least_one.join(", ")));
        }
        if !c.just_one.is_empty() {
            let n = c.just_one.iter().filter(|n| has(n)).count();
            if n != 1 {
                let at = if prefix.is_empty() { "(event)".to_string() } else { prefix.to_string() };
                self.report(at, format!("constraint just_one: needs exactly one of {}, has {n}", c.just_one.join(", ")));
            }
        }
    }

    fn value(&mut self, a: &Attribute, v: &Value, path: &str) {
        let schema = self.schema;
        let bad = |c: &mut Self, want: &str| c.report(path, format!("expected {want} ({}), got {v}", a.type_name));
        match &a.ty {
            AttrType::Object(name) => match (v.as_object(), schema.object(name)) {
                (Some(o), Some(def)) => self.object(&def.attributes, &def.constraints, o, path),
                (None, _) => bad(self, "an object"),
                (_, None) => self.report(path, format!("unknown object type {name}")),
            },
            AttrType::Scalar(s) => {
                let ok = match s {
                    Scalar::String => v.is_string(),
                    Scalar::Integer => v.as_i64().is_some_and(|i| i32::try_from(i).is_ok()),
                    Scalar::Long | Scalar::Timestamp => v.is_i64() || v.is_u64(),
                    Scalar::Float => v.is_number(),
                    Scalar::Boolean => v.is_boolean(),
                    Scalar::Datetime => v.as_str().is_some_and(is_rfc3339),
                    Scalar::Json => true,
                };
                if !ok {
                    return bad(self, "a value of the right type");
                }
                if let (Some((lo, hi)), Some(x)) = (schema.range_of(&a.type_name), v.as_f64())
                    && (x < lo || x > hi)
                {
                    self.report(path, format!("{v} is outside the range of {} ({lo}..={hi})", a.type_name));
                }
                // The classification uids are checked against the class in `validate_event`
                // (one problem, saying what was expected, rather than two).
                let classification = matches!(a.name.as_str(), "class_uid" | "category_uid" | "type_uid");
                if let (Some(values), Some(id), false) = (&a.enum_values, v.as_i64(), classification)
                    && !values.contains_key(&id)
                {
                    self.report(path, format!("{id} is not a value of {} the schema lists", a.name));
                }
            }
        }
    }

    /// `observables[].name` points at an attribute of the event (`src_endpoint.ip`), through
    /// arrays without an index (`resources.uid`), as OCSF defines it.
    fn observables(&mut self, class: &ClassDef, obj: &Map<String, Value>) {
        let Some(list) = obj.get("observables").and_then(Value::as_array) else { return };
        for (i, o) in list.iter().enumerate() {
            let Some(name) = o.get("name").and_then(Value::as_str) else { continue };
            let path = format!("observables[{i}].name");
            if !self.schema.has_path(&class.attributes, name) {
                self.report(path, format!("`{name}` is not an attribute path of {}", class.name));
            } else if !carries(&Value::Object(obj.clone()), name) {
                self.report(path, format!("`{name}` names an attribute this event does not carry"));
            }
        }
    }
}

/// Whether a dot path (arrays crossed without an index) reaches a non-null value.
fn carries(v: &Value, path: &str) -> bool {
    let (head, rest) = path.split_once('.').map_or((path, None), |(h, r)| (h, Some(r)));
    let next = |v: &Value| match (v.get(head), rest) {
        (Some(x), None) => !x.is_null(),
        (Some(x), Some(rest)) => carries(x, rest),
        (None, _) => false,
    };
    match v {
        Value::Array(items) => items.iter().any(|i| carries(i, path)),
        _ => next(v),
    }
}

/// RFC 3339 date-time (`2026-11-20T14:03:21Z`, `...21.123+01:00`), as `datetime_t` requires.
fn is_rfc3339(s: &str) -> bool {
    chrono::DateTime::parse_from_rfc3339(s).is_ok()
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
    fn just_one_counts_the_attributes_present() {
        let s = schema();
        let def = s.object("vulnerability").unwrap();
        let mut c = Check { schema: s, profiles: Vec::new(), out: Vec::new() };
        let two = json!({"cve": {"uid": "CVE-2026-1"}, "cwe": {"uid": "CWE-79"}});
        c.constraints(&def.constraints, two.as_object().unwrap(), "vulnerabilities[0]");
        assert!(c.out.iter().any(|v| v.problem.contains("just_one") && v.problem.ends_with("has 2")), "{:?}", c.out);
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
            (
                "api.operation",
                Box::new(|e| {
                    e["api"].as_object_mut().unwrap().remove("operation");
                }),
            ),
            ("activity_id", Box::new(|e| e["activity_id"] = json!("Create"))),
            ("activity_id", Box::new(|e| e["activity_id"] = json!(42))),
            ("actor.user.shoe_size", Box::new(|e| e["actor"]["user"]["shoe_size"] = json!(44))),
            ("class_uid", Box::new(|e| e["class_uid"] = json!(3002))),
            ("type_uid", Box::new(|e| e["type_uid"] = json!(600302))),
            (
                "cloud",
                Box::new(|e| {
                    e.as_object_mut().unwrap().remove("cloud");
                }),
            ),
            ("src_endpoint.port", Box::new(|e| e["src_endpoint"]["port"] = json!(1u64 << 40))),
            ("src_endpoint.port", Box::new(|e| e["src_endpoint"]["port"] = json!(70000))),
            ("severity_id", Box::new(|e| e["severity_id"] = json!(1.5))),
            ("time_dt", Box::new(|e| e["time_dt"] = json!("yesterday"))),
            // A profile's attributes need the profile listed.
            ("cloud", Box::new(|e| e["metadata"]["profiles"] = json!(["datetime"]))),
            ("time_dt", Box::new(|e| e["metadata"]["profiles"] = json!(["cloud"]))),
            ("message_context", Box::new(|e| e["message_context"] = json!({"application": {"name": "x"}}))),
            // Constraints, at any depth.
            ("http_request.url", Box::new(|e| e["http_request"] = json!({"url": {"hostname": "example.com"}}))),
            ("actor", Box::new(|e| e["actor"] = json!({"authorizations": []}))),
            ("actor.user", Box::new(|e| e["actor"]["user"] = json!({"type": "IAMUser"}))),
            // Observables name attribute paths the event carries.
            ("observables[0].name", Box::new(|e| e["observables"] = json!([{"name": "src_endpoint.ipv4", "type_id": 2, "value": "192.0.2.1"}]))),
            ("observables[0].name", Box::new(|e| e["observables"] = json!([{"name": "dst_endpoint.ip", "type_id": 2, "value": "192.0.2.1"}]))),
        ];
        for (path, break_it) in cases {
            let mut e = valid_api_activity();
            break_it(&mut e);
            let v = validate_event(s, class, &e);
            assert!(v.iter().any(|x| x.path == path), "{path}: {v:?}");
        }
        // An observable through an array, without an index.
        let mut e = valid_api_activity();
        e["resources"] = json!([{"uid": "arn:aws:s3:::b"}]);
        e["observables"] = json!([{"name": "resources.uid", "type_id": 10, "value": "arn:aws:s3:::b"}, {"name": "src_endpoint.ip", "type_id": 2, "value": "192.0.2.1"}]);
        assert!(validate_event(s, class, &e).is_empty(), "{:?}", validate_event(s, class, &e));
        // 99 = Other where the schema lists it.
        let mut e = valid_api_activity();
        e["activity_id"] = json!(99);
        e["type_uid"] = json!(600399);
        assert!(validate_event(s, class, &e).is_empty());
    }
}
