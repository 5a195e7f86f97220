//! Where a CloudTrail field name (as Sigma rules for `product: aws, service: cloudtrail` write
//! them) is found in an OCSF row: the documented mapping of docs/detection/sigma.md.
//!
//! The OCSF columns come first (what the CloudTrail normalizer maps), then the preserved JSON:
//! `requestParameters` and `responseElements` are `api.request.data` / `api.response.data`, and
//! every field the normalizer did not map is under the same path in `unmapped`.

use std::borrow::Cow;

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, RecordBatch, StringArray, StructArray};
use arrow::buffer::NullBuffer;
use arrow::datatypes::DataType;
use serde_json::Value;

/// CloudTrail fields read from OCSF columns: the first non-null column wins.
const COLUMNS: &[(&str, &[&str])] = &[
    ("eventName", &["api.operation"]),
    ("eventSource", &["api.service.name"]),
    ("eventID", &["metadata.uid"]),
    ("eventType", &["metadata.event_code"]),
    ("eventCategory", &["metadata.log_name"]),
    ("eventVersion", &["metadata.log_version"]),
    ("eventTime", &["metadata.original_time"]),
    ("awsRegion", &["cloud.region"]),
    ("recipientAccountId", &["cloud.account.uid"]),
    ("errorCode", &["api.response.error", "status_code"]),
    ("errorMessage", &["api.response.error_message", "status_detail"]),
    ("requestID", &["api.request.uid"]),
    ("apiVersion", &["api.version"]),
    // Canonical form: Stratus's anonymised `075.050.255.67` reads `75.50.255.67` here.
    ("sourceIPAddress", &["src_endpoint.ip", "src_endpoint.domain", "src_endpoint.name"]),
    ("userAgent", &["http_request.user_agent"]),
    ("tlsDetails.clientProvidedHostHeader", &["http_request.url.hostname"]),
    ("userIdentity.type", &["actor.user.type"]),
    ("userIdentity.arn", &["actor.user.uid"]),
    ("userIdentity.principalId", &["actor.user.uid_alt"]),
    ("userIdentity.accountId", &["actor.user.account.uid"]),
    // For an assumed role this is the role session name (the normalizer's choice).
    ("userIdentity.userName", &["actor.user.name"]),
    ("userIdentity.accessKeyId", &["actor.session.credential_uid"]),
    ("userIdentity.invokedBy", &["actor.invoked_by"]),
    ("userIdentity.identityProvider", &["actor.idp.name"]),
    ("userIdentity.sessionContext.sessionIssuer.arn", &["actor.session.issuer"]),
    ("additionalEventData.LoginTo", &["dst_endpoint.svc_name"]),
];

/// CloudTrail fields the normalizer turned into OCSF booleans, written back as CloudTrail does.
const FLAGS: &[(&str, &str, &str, &str)] =
    &[("additionalEventData.MFAUsed", "is_mfa", "Yes", "No"), ("userIdentity.sessionContext.attributes.mfaAuthenticated", "actor.session.is_mfa", "true", "false")];

/// CloudTrail objects kept whole as JSON text (when the normalizer could not, under `unmapped`).
const JSON: &[(&str, &str)] = &[("requestParameters", "api.request.data"), ("responseElements", "api.response.data")];

/// How one field is read.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// The first non-null of these columns, else the field under `unmapped`.
    Columns(&'static str, &'static [&'static str]),
    Flag {
        column: &'static str,
        yes: &'static str,
        no: &'static str,
    },
    /// A path under a JSON text column, else under `unmapped.<root>`.
    Json {
        column: &'static str,
        root: &'static str,
        path: Vec<String>,
    },
    Unmapped(Vec<String>),
    /// The whole row as text, for Sigma keywords.
    Keywords,
}

impl Source {
    /// The source of a CloudTrail field name (`None`: keyword search).
    pub fn of(field: Option<&str>) -> Source {
        let Some(field) = field else { return Source::Keywords };
        if let Some((f, cols)) = COLUMNS.iter().find(|(f, _)| *f == field) {
            return Source::Columns(f, cols);
        }
        if let Some((_, column, yes, no)) = FLAGS.iter().find(|(f, ..)| *f == field) {
            return Source::Flag { column, yes, no };
        }
        let mut parts = field.split('.');
        let root = parts.next().unwrap_or_default();
        if let Some((root, column)) = JSON.iter().find(|(r, _)| *r == root) {
            return Source::Json { column, root, path: parts.map(str::to_string).collect() };
        }
        Source::Unmapped(field.split('.').map(str::to_string).collect())
    }

    /// The OCSF columns this source reads (for `rules validate` and docs).
    pub fn columns(&self) -> Vec<&'static str> {
        match self {
            Source::Columns(_, c) => c.iter().copied().chain(["unmapped"]).collect(),
            Source::Flag { column, .. } => vec![column],
            Source::Json { column, .. } => vec![column, "unmapped"],
            Source::Unmapped(_) => vec!["unmapped"],
            Source::Keywords => vec!["unmapped", "api.request.data", "api.response.data"],
        }
    }
}

/// The mapping as (CloudTrail field, OCSF columns) rows, for `rules fields` and the docs test.
pub fn mapping() -> Vec<(&'static str, String)> {
    let mut rows: Vec<(&str, String)> = COLUMNS.iter().map(|(f, c)| (*f, c.join(" | "))).collect();
    rows.extend(FLAGS.iter().map(|(f, c, y, n)| (*f, format!("{c} (true -> \"{y}\", false -> \"{n}\")"))));
    rows.extend(JSON.iter().map(|(f, c)| (*f, format!("{c} (JSON), else unmapped.{f}"))));
    rows
}

/// A string column with the nulls of its parents folded in.
pub type Strs = StringArray;

/// A column by dotted OCSF path, with parent struct nulls merged (a null `api` means a null
/// `api.operation`, whatever the child array holds).
pub fn column(batch: &RecordBatch, path: &str) -> Option<ArrayRef> {
    let mut parts = path.split('.');
    let mut col: ArrayRef = batch.column_by_name(parts.next()?)?.clone();
    let mut nulls: Option<NullBuffer> = col.nulls().cloned();
    for p in parts {
        let s: &StructArray = col.as_struct_opt()?;
        let child = s.column_by_name(p)?.clone();
        nulls = NullBuffer::union(nulls.as_ref(), child.nulls());
        col = child;
    }
    Some(match col.data_type() {
        DataType::Utf8 => {
            let (o, v, _) = col.as_string::<i32>().clone().into_parts();
            std::sync::Arc::new(StringArray::new(o, v, nulls))
        }
        DataType::Boolean => {
            let (v, _) = col.as_boolean().clone().into_parts();
            std::sync::Arc::new(BooleanArray::new(v, nulls))
        }
        _ => col,
    })
}

/// A struct's child with the struct's nulls folded in.
pub fn column_with_parent_nulls(parent: &StructArray, child: &ArrayRef) -> ArrayRef {
    match child.as_string_opt::<i32>() {
        Some(s) => {
            let (o, v, n) = s.clone().into_parts();
            std::sync::Arc::new(StringArray::new(o, v, NullBuffer::union(n.as_ref(), parent.nulls())))
        }
        None => child.clone(),
    }
}

/// The string at `row` of an optional string column (null, absent or not a string: None).
pub fn str_at(a: &Option<ArrayRef>, row: usize) -> Option<&str> {
    text_at(a.as_ref()?, row)
}

fn text_at(a: &ArrayRef, row: usize) -> Option<&str> {
    let a = a.as_string_opt::<i32>()?;
    a.is_valid(row).then(|| a.value(row))
}

/// The sources of a rule set resolved against one batch.
pub struct BatchFields<'b> {
    resolved: Vec<Resolved<'b>>,
    unmapped: Option<ArrayRef>,
    /// Every string column, for keyword search.
    all_text: Vec<ArrayRef>,
}

enum Resolved<'b> {
    /// The columns, then the same field under `unmapped` (what the normalizer left there).
    Columns(Vec<Option<ArrayRef>>, Vec<String>),
    Flag(Option<ArrayRef>, &'static str, &'static str),
    /// `under`: the same field's path under `unmapped` (the root, then the path).
    Json {
        column: Option<ArrayRef>,
        under: Vec<String>,
        path: &'b [String],
        slot: usize,
    },
    Unmapped(&'b [String]),
    Keywords,
}

/// Parsed JSON columns of the current row, so several fields under `requestParameters` parse
/// it once.
#[derive(Default)]
pub struct RowJson {
    row: usize,
    parsed: [Option<Option<Value>>; 2],
}

impl RowJson {
    pub fn reset(&mut self, row: usize) {
        self.row = row;
        self.parsed = Default::default();
    }
}

impl<'b> BatchFields<'b> {
    pub fn new(batch: &RecordBatch, sources: &'b [Source]) -> BatchFields<'b> {
        let resolved = sources
            .iter()
            .map(|s| match s {
                Source::Columns(field, cols) => Resolved::Columns(cols.iter().map(|c| column(batch, c)).collect(), field.split('.').map(str::to_string).collect()),
                Source::Flag { column: c, yes, no } => Resolved::Flag(column(batch, c), yes, no),
                Source::Json { column: c, root, path } => {
                    let slot = JSON.iter().position(|(r, _)| r == root).unwrap_or(0);
                    let under = std::iter::once(root.to_string()).chain(path.iter().cloned()).collect();
                    Resolved::Json { column: column(batch, c), under, path, slot }
                }
                Source::Unmapped(path) => Resolved::Unmapped(path),
                Source::Keywords => Resolved::Keywords,
            })
            .collect();
        let all_text = if sources.contains(&Source::Keywords) { string_leaves(batch) } else { Vec::new() };
        BatchFields { resolved, unmapped: column(batch, "unmapped"), all_text }
    }

    /// The text of field `i` in `row` (`None`: null or absent).
    pub fn value<'s>(&'s self, i: usize, row: usize, json: &'s mut RowJson) -> Option<Cow<'s, str>> {
        debug_assert_eq!(json.row, row);
        match &self.resolved[i] {
            Resolved::Columns(cols, path) => match cols.iter().find_map(|c| str_at(c, row)) {
                Some(v) => Some(Cow::Borrowed(v)),
                None => self.unmapped_at(row, path),
            },
            Resolved::Flag(c, yes, no) => {
                let b = c.as_ref()?.as_boolean_opt()?;
                b.is_valid(row).then(|| Cow::Borrowed(if b.value(row) { *yes } else { *no }))
            }
            Resolved::Json { column, under, path, slot } => {
                if let Some(text) = str_at(column, row) {
                    if path.is_empty() {
                        return Some(Cow::Borrowed(text));
                    }
                    let v = json.parsed[*slot].get_or_insert_with(|| serde_json::from_str(text).ok()).as_ref()?;
                    return lookup(v, path);
                }
                self.unmapped_at(row, under)
            }
            Resolved::Unmapped(path) => self.unmapped_at(row, path),
            Resolved::Keywords => {
                let parts: Vec<&str> = self.all_text.iter().filter_map(|a| text_at(a, row)).collect();
                Some(Cow::Owned(parts.join("\n")))
            }
        }
    }

    /// A field under `unmapped`, which holds everything the normalizer did not map and is
    /// the largest text of a row: only the path is built, the rest is skipped unparsed.
    fn unmapped_at(&self, row: usize, path: &[String]) -> Option<Cow<'static, str>> {
        lookup_text(str_at(&self.unmapped, row)?, path).map(Cow::Owned)
    }
}

/// Every string leaf column of a batch (keyword search reads them all).
fn string_leaves(batch: &RecordBatch) -> Vec<ArrayRef> {
    let mut out = Vec::new();
    for (f, _) in ocelot_schemas::leaf_paths(batch.schema().as_ref()) {
        if let Some(c) = column(batch, &f).filter(|c| c.data_type() == &DataType::Utf8) {
            out.push(c);
        }
    }
    out
}

/// `lookup` on JSON text. Only what lies on the path is built (`Prune`); the rest is skipped.
pub fn lookup_text(text: &str, path: &[String]) -> Option<String> {
    use serde::de::DeserializeSeed;
    let mut de = serde_json::Deserializer::from_str(text);
    let pruned = Prune(path).deserialize(&mut de).ok()?;
    de.end().ok()?;
    lookup(&pruned, path).map(Cow::into_owned)
}

/// Deserializes JSON keeping only what `lookup` with this path reads: in objects the path's
/// key (the last one, as a full parse keeps), in arrays every member, at the end of the path
/// the whole value. So `lookup(pruned, path) == lookup(full, path)`.
struct Prune<'p>(&'p [String]);

impl<'de> serde::de::DeserializeSeed<'de> for Prune<'_> {
    type Value = Value;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        if self.0.is_empty() {
            return serde::Deserialize::deserialize(d);
        }
        d.deserialize_any(self)
    }
}

/// An object key compared with the wanted one, without allocating.
struct KeyIs<'p>(&'p str);

impl<'de> serde::de::DeserializeSeed<'de> for KeyIs<'_> {
    type Value = bool;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_str(self)
    }
}

impl serde::de::Visitor<'_> for KeyIs<'_> {
    type Value = bool;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an object key")
    }
    fn visit_str<E>(self, v: &str) -> Result<bool, E> {
        Ok(v == self.0)
    }
}

impl<'de> serde::de::Visitor<'de> for Prune<'_> {
    type Value = Value;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("JSON")
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let (key, rest) = self.0.split_first().expect("Prune only visits with a path left");
        let mut found = None;
        while let Some(wanted) = map.next_key_seed(KeyIs(key))? {
            if wanted {
                found = Some(map.next_value_seed(Prune(rest))?);
            } else {
                map.next_value::<serde::de::IgnoredAny>()?;
            }
        }
        Ok(Value::Object(found.map(|v| (key.clone(), v)).into_iter().collect()))
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(v) = seq.next_element_seed(Prune(self.0))? {
            items.push(v);
        }
        Ok(Value::Array(items))
    }
    // A scalar where the path goes on holds nothing for it.
    fn visit_bool<E>(self, _: bool) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_str<E>(self, _: &str) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
}

/// The value at a dotted path: objects are entered by key; an array on the way applies the
/// rest of the path to each member and yields the JSON list of what they hold; a value that is
/// an object or array is its compact JSON text. Same rule as the reference evaluator
/// (tests/sigma_reference.py).
pub fn lookup<'v>(v: &'v Value, path: &[String]) -> Option<Cow<'v, str>> {
    let found = descend(v, path)?;
    Some(match found {
        Cow::Borrowed(Value::String(s)) => Cow::Borrowed(s.as_str()),
        Cow::Borrowed(Value::Null) | Cow::Owned(Value::Null) => return None,
        other => Cow::Owned(text(&other)),
    })
}

fn descend<'v>(v: &'v Value, path: &[String]) -> Option<Cow<'v, Value>> {
    let Some((first, rest)) = path.split_first() else { return Some(Cow::Borrowed(v)) };
    match v {
        Value::Object(o) => descend(o.get(first)?, rest),
        Value::Array(items) => {
            let found: Vec<Value> = items.iter().filter_map(|i| descend(i, path)).map(Cow::into_owned).collect();
            (!found.is_empty()).then_some(Cow::Owned(Value::Array(found)))
        }
        _ => None,
    }
}

/// A JSON value as Sigma compares it: strings as they are, the rest as compact JSON.
fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Rows of AI-agent telemetry: the `ai_operation` profile.
pub fn ai_operation_rows(batch: &RecordBatch) -> Vec<bool> {
    let mut out = vec![false; batch.num_rows()];
    let Some(profiles) = column(batch, "metadata").and_then(|m| m.as_struct_opt().and_then(|s| s.column_by_name("profiles").cloned())) else { return out };
    let Some(list) = profiles.as_list_opt::<i32>() else { return out };
    // Read through the offsets into the one values array (a slice per row would cost more
    // than the test).
    let Some(values) = list.values().as_string_opt::<i32>() else { return out };
    let offsets = list.value_offsets();
    for (row, slot) in out.iter_mut().enumerate() {
        if list.is_valid(row) {
            *slot = (offsets[row] as usize..offsets[row + 1] as usize).any(|i| values.is_valid(i) && values.value(i) == "ai_operation");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_go_through_objects_and_arrays() {
        let v: Value = serde_json::from_str(r#"{"a":{"b":"x"},"l":[{"c":["1","2"]},{"d":1},{"c":"3"}],"n":null,"o":{"k":true}}"#).unwrap();
        let p = |s: &str| s.split('.').map(str::to_string).collect::<Vec<_>>();
        assert_eq!(lookup(&v, &p("a.b")).as_deref(), Some("x"));
        assert_eq!(lookup(&v, &p("l.c")).as_deref(), Some(r#"[["1","2"],"3"]"#));
        assert_eq!(lookup(&v, &p("l.e")), None);
        assert_eq!(lookup(&v, &p("n")), None);
        assert_eq!(lookup(&v, &p("o")).as_deref(), Some(r#"{"k":true}"#));
        assert_eq!(lookup(&v, &p("o.k")).as_deref(), Some("true"));
        let text = v.to_string();
        for path in ["a.b", "l.c", "l.e", "n", "o", "o.k", "a", "zz", "l", "a.b.c", "l.c.x"] {
            assert_eq!(lookup_text(&text, &p(path)), lookup(&v, &p(path)).map(Cow::into_owned), "{path}");
        }
    }

    #[test]
    fn sources_follow_the_documented_mapping() {
        assert_eq!(Source::of(Some("eventName")), Source::Columns("eventName", &["api.operation"]));
        assert!(matches!(Source::of(Some("requestParameters.userName")), Source::Json { column: "api.request.data", root: "requestParameters", ref path } if path == &["userName"]));
        assert!(matches!(Source::of(Some("userIdentity.sessionContext.sessionIssuer.type")), Source::Unmapped(ref p) if p.len() == 4));
        assert_eq!(Source::of(None), Source::Keywords);
    }
}
