//! The part of an OCSF event a finding carries: who, what, where, to which resources.

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::datatypes::{DataType, TimeUnit};
use serde_json::{json, Map, Value};

use crate::fields::column;

/// A resource acted on (OCSF `resource_details`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Resource {
    pub uid: Option<String>,
    pub name: Option<String>,
    pub r#type: Option<String>,
}

/// Key facts of one event, trimmed for evidence.
#[derive(Debug, Clone, Default)]
pub struct EventSummary {
    pub uid: String,
    pub time: i64,
    pub class_uid: i64,
    pub type_uid: Option<i64>,
    pub operation: Option<String>,
    pub service: Option<String>,
    pub actor_uid: Option<String>,
    pub actor_name: Option<String>,
    pub actor_type: Option<String>,
    pub account: Option<String>,
    pub region: Option<String>,
    /// The AI agent the registry recognized (`actor.app_name`).
    pub agent: Option<String>,
    pub user_agent: Option<String>,
    pub src_ip: Option<String>,
    pub status: Option<String>,
    pub resources: Vec<Resource>,
}

const STR_COLUMNS: [&str; 12] = [
    "metadata.uid",
    "api.operation",
    "api.service.name",
    "actor.user.uid",
    "actor.user.name",
    "actor.user.type",
    "cloud.account.uid",
    "cloud.region",
    "actor.app_name",
    "http_request.user_agent",
    "src_endpoint.ip",
    "status",
];

/// The columns of one batch that summaries read.
pub struct Summaries {
    strs: Vec<Option<ArrayRef>>,
    /// What names a record without `metadata.uid` (agent telemetry): span, session, call.
    alt: [Option<ArrayRef>; 4],
    time: Option<ArrayRef>,
    class_uid: Option<ArrayRef>,
    type_uid: Option<ArrayRef>,
    resources: Option<ArrayRef>,
}

fn int_at(a: &Option<ArrayRef>, row: usize) -> Option<i64> {
    let a = a.as_ref()?;
    if a.is_null(row) {
        return None;
    }
    match a.data_type() {
        DataType::Int64 => Some(a.as_primitive::<arrow::datatypes::Int64Type>().value(row)),
        DataType::Int32 => Some(a.as_primitive::<arrow::datatypes::Int32Type>().value(row).into()),
        DataType::Timestamp(TimeUnit::Millisecond, _) => Some(a.as_primitive::<arrow::datatypes::TimestampMillisecondType>().value(row)),
        _ => None,
    }
}

fn str_at(a: &Option<ArrayRef>, row: usize) -> Option<String> {
    crate::fields::str_at(a, row).map(str::to_string)
}

const ALT_COLUMNS: [&str; 4] = ["trace.span.uid", "actor.session.uid", "api.request.uid", "activity_name"];

impl Summaries {
    /// The top-level columns summaries read (a batch cut down to these still summarizes).
    pub const COLUMNS: &[&str] = &["metadata", "api", "actor", "cloud", "http_request", "src_endpoint", "status", "trace", "activity_name", "time", "class_uid", "type_uid", "resources"];

    pub fn new(batch: &RecordBatch) -> Summaries {
        Summaries {
            strs: STR_COLUMNS.iter().map(|c| column(batch, c)).collect(),
            alt: ALT_COLUMNS.map(|c| column(batch, c)),
            time: column(batch, "time"),
            class_uid: column(batch, "class_uid"),
            type_uid: column(batch, "type_uid"),
            resources: batch.column_by_name("resources").cloned(),
        }
    }

    /// Event time in epoch milliseconds (0 when absent: OCSF requires it, so never in practice).
    pub fn time(&self, row: usize) -> i64 {
        int_at(&self.time, row).unwrap_or(0)
    }

    /// `metadata.uid`; for agent telemetry without one, its span id, else
    /// `session/call/activity@time` (stable across replays).
    pub fn uid(&self, row: usize) -> Option<String> {
        str_at(&self.strs[0], row).or_else(|| str_at(&self.alt[0], row)).or_else(|| {
            let call = str_at(&self.alt[2], row)?;
            Some(format!("{}/{call}/{}@{}", str_at(&self.alt[1], row).unwrap_or_default(), str_at(&self.alt[3], row).unwrap_or_default(), self.time(row)))
        })
    }

    /// `uid`, borrowed from the batch when the row has a `metadata.uid`.
    pub fn uid_cow(&self, row: usize) -> Option<std::borrow::Cow<'_, str>> {
        match self.uid_ref(row) {
            Some(u) => Some(std::borrow::Cow::Borrowed(u)),
            None => self.uid(row).map(std::borrow::Cow::Owned),
        }
    }

    /// `metadata.uid` as it is (every row has one once the engine filled them).
    pub fn uid_ref(&self, row: usize) -> Option<&str> {
        crate::fields::str_at(&self.strs[0], row)
    }

    /// The principal a single-event finding groups by: `actor uid|account`.
    pub fn principal(&self, row: usize) -> String {
        let (actor, account) = self.principal_parts(row);
        format!("{actor}|{account}")
    }

    /// The (actor uid, account) of `principal`, borrowed from the batch.
    pub fn principal_parts(&self, row: usize) -> (&str, &str) {
        let s = |i: usize| crate::fields::str_at(&self.strs[i], row).unwrap_or("-");
        (s(3), s(6))
    }

    pub fn get(&self, row: usize) -> EventSummary {
        let s = |i: usize| str_at(&self.strs[i], row);
        EventSummary {
            uid: self.uid(row).unwrap_or_default(),
            time: self.time(row),
            class_uid: int_at(&self.class_uid, row).unwrap_or(0),
            type_uid: int_at(&self.type_uid, row),
            operation: s(1),
            service: s(2),
            actor_uid: s(3),
            actor_name: s(4),
            actor_type: s(5),
            account: s(6),
            region: s(7),
            agent: s(8),
            user_agent: s(9),
            src_ip: s(10),
            status: s(11),
            resources: self.resources(row),
        }
    }

    fn resources(&self, row: usize) -> Vec<Resource> {
        let Some(list) = self.resources.as_ref().and_then(|r| r.as_list_opt::<i32>()) else { return Vec::new() };
        if list.is_null(row) {
            return Vec::new();
        }
        let items = list.value(row);
        let Some(st) = items.as_struct_opt() else { return Vec::new() };
        let col = |n: &str| st.column_by_name(n).cloned();
        let (uid, name, ty) = (col("uid"), col("name"), col("type"));
        (0..st.len()).filter(|&i| st.is_valid(i)).map(|i| Resource { uid: str_at(&uid, i), name: str_at(&name, i), r#type: str_at(&ty, i) }).collect()
    }
}

fn put(m: &mut Map<String, Value>, k: &str, v: &Option<String>) {
    if let Some(v) = v {
        m.insert(k.to_string(), Value::String(v.clone()));
    }
}

impl Resource {
    pub fn to_ocsf(&self) -> Value {
        let mut m = Map::new();
        put(&mut m, "uid", &self.uid);
        put(&mut m, "name", &self.name);
        put(&mut m, "type", &self.r#type);
        Value::Object(m)
    }
}

impl EventSummary {
    /// OCSF `actor` of the event: the principal, and the agent as its application.
    pub fn actor(&self) -> Option<Value> {
        let mut user = Map::new();
        put(&mut user, "uid", &self.actor_uid);
        put(&mut user, "name", &self.actor_name);
        put(&mut user, "type", &self.actor_type);
        if let Some(a) = &self.account {
            user.insert("account".into(), json!({"uid": a, "type": "AWS Account", "type_id": 10}));
        }
        let mut actor = Map::new();
        if !user.is_empty() {
            actor.insert("user".into(), Value::Object(user));
        }
        put(&mut actor, "app_name", &self.agent);
        (!actor.is_empty()).then_some(Value::Object(actor))
    }

    /// A trimmed copy of the event as an OCSF `evidences` item.
    pub fn evidence(&self) -> Value {
        let mut e = Map::new();
        if let Some(a) = self.actor() {
            e.insert("actor".into(), a);
        }
        if let Some(op) = &self.operation {
            let mut api = json!({"operation": op});
            if let Some(s) = &self.service {
                api["service"] = json!({"name": s});
            }
            e.insert("api".into(), api);
        }
        if let Some(ip) = &self.src_ip {
            e.insert("src_endpoint".into(), json!({"ip": ip}));
        }
        if !self.resources.is_empty() {
            e.insert("resources".into(), Value::Array(self.resources.iter().map(Resource::to_ocsf).collect()));
        }
        let mut data = Map::new();
        data.insert("uid".into(), json!(self.uid));
        data.insert("time".into(), json!(self.time));
        data.insert("class_uid".into(), json!(self.class_uid));
        put(&mut data, "region", &self.region);
        put(&mut data, "user_agent", &self.user_agent);
        put(&mut data, "status", &self.status);
        e.insert("data".into(), Value::Object(data));
        e.insert("uid".into(), json!(self.uid));
        Value::Object(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_read_only_the_columns_they_name() {
        for path in STR_COLUMNS.iter().chain(&ALT_COLUMNS) {
            let top = path.split('.').next().unwrap();
            assert!(Summaries::COLUMNS.contains(&top), "{path}");
        }
    }
}
