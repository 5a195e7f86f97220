//! The vendored OCSF schema, resolved: classes and objects with `extends` and `$include`
//! (profiles) merged, attribute types taken from the dictionary, enums merged along the chain.
//!
//! Loading happens once at start-up (it is not on the hot path), so plain `serde_json::Value`
//! is fine here.

use std::collections::{BTreeMap, HashMap};
use std::sync::OnceLock;

use serde_json::{Map, Value};

mod files {
    include!(concat!(env!("OUT_DIR"), "/schema_files.rs"));
}

/// The OCSF version vendored under `schemas/ocsf/`.
pub const OCSF_VERSION: &str = "1.8.0";

/// The scalar kinds OCSF types reduce to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scalar {
    String,
    Integer,
    Long,
    Float,
    Boolean,
    /// `timestamp_t`: epoch milliseconds in a long.
    Timestamp,
    /// `datetime_t`: RFC 3339 text in JSON, an Arrow timestamp in batches.
    Datetime,
    /// `json_t` and the generic `object`: any JSON value; a JSON string in Arrow.
    Json,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttrType {
    Scalar(Scalar),
    /// A named OCSF object (`user`, `api`, ...).
    Object(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Requirement {
    Optional,
    Recommended,
    Required,
}

#[derive(Debug, Clone)]
pub struct Attribute {
    pub name: String,
    pub caption: String,
    /// The OCSF type name as written in the schema (`ip_t`, `user`, ...).
    pub type_name: String,
    pub ty: AttrType,
    pub is_array: bool,
    pub requirement: Requirement,
    /// Known enum values (id -> caption); `None` when the attribute is not an enum.
    pub enum_values: Option<BTreeMap<i64, String>>,
    /// The caption attribute that goes with an `*_id` enum (`activity_id` -> `activity_name`).
    pub sibling: Option<String>,
    /// The profile that brings this attribute in, if any.
    pub profile: Option<String>,
    pub deprecated: bool,
}

/// OCSF `constraints` of a class or object: which of its attributes must be present. Names may
/// be dot paths (`device.os.version`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Constraints {
    /// At least one of these attributes must be present.
    pub at_least_one: Vec<String>,
    /// Exactly one of these attributes must be present.
    pub just_one: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct ObjectDef {
    pub name: String,
    pub caption: String,
    pub attributes: BTreeMap<String, Attribute>,
    pub constraints: Constraints,
}

#[derive(Debug, Clone)]
pub struct ClassDef {
    pub name: String,
    pub caption: String,
    pub uid: i32,
    pub category_uid: i32,
    pub category_name: String,
    pub attributes: BTreeMap<String, Attribute>,
    pub profiles: Vec<String>,
    pub constraints: Constraints,
}

impl ClassDef {
    /// `type_uid` as OCSF defines it: class_uid * 100 + activity_id.
    pub fn type_uid(&self, activity_id: i32) -> i64 {
        self.uid as i64 * 100 + activity_id as i64
    }

    /// The caption of an activity id of this class ("Create", "Logon", ...).
    pub fn activity_name(&self, activity_id: i32) -> Option<&str> {
        self.attributes.get("activity_id")?.enum_values.as_ref()?.get(&(activity_id as i64)).map(String::as_str)
    }
}

#[derive(Debug)]
pub struct Schema {
    pub version: String,
    pub classes: BTreeMap<String, ClassDef>,
    pub objects: HashMap<String, ObjectDef>,
    /// The ranges types set on their values (`port_t`: 0..=65535), by type name.
    pub ranges: HashMap<String, (f64, f64)>,
}

#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error("OCSF schema file {0} is not valid JSON: {1}")]
    Json(String, serde_json::Error),
    #[error("OCSF schema: {0}")]
    Invalid(String),
}

/// The vendored OCSF schema, loaded on first use.
pub fn schema() -> &'static Schema {
    static SCHEMA: OnceLock<Schema> = OnceLock::new();
    SCHEMA.get_or_init(|| Schema::load_embedded().expect("the vendored OCSF schema is checked by tests"))
}

/// OCSF 1.1.0, the version Amazon Security Lake takes from custom sources, loaded on first use.
pub fn schema_1_1() -> &'static Schema {
    static SCHEMA: OnceLock<Schema> = OnceLock::new();
    SCHEMA.get_or_init(|| Schema::load_files(files::FILES_1_1_0).expect("the vendored OCSF 1.1.0 schema is checked by tests"))
}

impl Schema {
    /// Loads the schema embedded at build time from `schemas/ocsf/1.8.0`.
    pub fn load_embedded() -> Result<Schema, SchemaError> {
        Schema::load_files(files::FILES)
    }

    fn load_files(files: &[(&str, &str)]) -> Result<Schema, SchemaError> {
        let mut raw = HashMap::new();
        for (path, text) in files {
            let v: Value = serde_json::from_str(text).map_err(|e| SchemaError::Json(path.to_string(), e))?;
            raw.insert(path.to_string(), v);
        }
        Loader::new(raw)?.load()
    }

    /// A class by name (`api_activity`) or by class_uid (`6003`).
    pub fn class(&self, name_or_uid: &str) -> Option<&ClassDef> {
        if let Ok(uid) = name_or_uid.parse::<i32>() {
            return self.classes.values().find(|c| c.uid == uid);
        }
        self.classes.get(name_or_uid)
    }

    pub fn object(&self, name: &str) -> Option<&ObjectDef> {
        self.objects.get(name)
    }

    /// The attributes of a class or object by its type name.
    /// The range of values a type allows, if it sets one.
    pub fn range_of(&self, type_name: &str) -> Option<(f64, f64)> {
        self.ranges.get(type_name).copied()
    }

    /// Whether a dot path (`src_endpoint.ip`, arrays crossed without an index: `resources.uid`)
    /// names an attribute under `attrs`, as `observables[].name` must.
    pub fn has_path(&self, attrs: &BTreeMap<String, Attribute>, path: &str) -> bool {
        let (head, rest) = path.split_once('.').map_or((path, None), |(h, r)| (h, Some(r)));
        let Some(a) = attrs.get(head) else { return false };
        match (rest, &a.ty) {
            (None, _) => true,
            (Some(rest), AttrType::Object(o)) => self.object(o).is_some_and(|d| self.has_path(&d.attributes, rest)),
            (Some(_), AttrType::Scalar(_)) => false,
        }
    }

    pub fn attributes_of(&self, object: &str) -> Option<&BTreeMap<String, Attribute>> {
        self.objects.get(object).map(|o| &o.attributes)
    }
}

struct Loader {
    raw: HashMap<String, Value>,
    dictionary: Map<String, Value>,
    types: Map<String, Value>,
    /// event name -> file path
    events: HashMap<String, String>,
    /// object name -> file path
    object_files: HashMap<String, String>,
    categories: Map<String, Value>,
}

fn obj<'a>(v: &'a Value, key: &str) -> Option<&'a Map<String, Value>> {
    v.get(key).and_then(Value::as_object)
}

fn text(v: &Value, key: &str) -> String {
    v.get(key).and_then(Value::as_str).unwrap_or_default().to_string()
}

impl Loader {
    fn new(raw: HashMap<String, Value>) -> Result<Self, SchemaError> {
        let missing = |f: &str| SchemaError::Invalid(format!("{f} missing"));
        let dict = raw.get("dictionary.json").ok_or_else(|| missing("dictionary.json"))?;
        let dictionary = obj(dict, "attributes").cloned().ok_or_else(|| missing("dictionary attributes"))?;
        let types = dict.get("types").and_then(|t| obj(t, "attributes")).cloned().ok_or_else(|| missing("dictionary types"))?;
        let categories = raw.get("categories.json").and_then(|c| obj(c, "attributes")).cloned().ok_or_else(|| missing("categories.json"))?;
        let mut events = HashMap::new();
        let mut object_files = HashMap::new();
        for (path, v) in &raw {
            let name = text(v, "name");
            if path.starts_with("events/") {
                events.insert(name, path.clone());
            } else if path.starts_with("objects/") {
                object_files.insert(name, path.clone());
            }
        }
        Ok(Loader { raw, dictionary, types, events, object_files, categories })
    }

    fn load(self) -> Result<Schema, SchemaError> {
        let version = self.raw.get("version.json").map(|v| text(v, "version")).unwrap_or_default();
        let mut objects = HashMap::new();
        for name in self.object_files.keys() {
            if name.starts_with('_') {
                continue; // abstract bases, only reachable through `extends`
            }
            let (def, _) = self.merged("objects", name, &self.object_files)?;
            let caption = text(&self.raw[&self.object_files[name]], "caption");
            let constraints = self.constraints(name, &self.object_files);
            objects.insert(name.clone(), ObjectDef { name: name.clone(), caption, attributes: self.attributes(&def)?, constraints });
        }
        self.observable_types(&mut objects);
        let mut classes = BTreeMap::new();
        for (name, path) in &self.events {
            let v = &self.raw[path];
            let Some(uid) = v.get("uid").and_then(Value::as_i64) else { continue };
            let (def, category) = self.merged("events", name, &self.events)?;
            let Some(category) = category else { continue }; // base_event itself
            let cat = self.categories.get(&category).ok_or_else(|| SchemaError::Invalid(format!("class {name}: unknown category {category}")))?;
            let category_uid = cat.get("uid").and_then(Value::as_i64).unwrap_or(0) as i32;
            let mut profiles = Vec::new();
            self.profiles_of(name, &mut profiles);
            let class_uid = category_uid * 1000 + uid as i32;
            let mut attributes = self.attributes(&def)?;
            // The schema's sources list only a placeholder (0) for these; a class's own are
            // its uid and its category's, as the OCSF server compiles them.
            for (attr, id, caption) in [("class_uid", class_uid, text(v, "caption")), ("category_uid", category_uid, text(cat, "caption"))] {
                if let Some(a) = attributes.get_mut(attr) {
                    a.enum_values = Some(BTreeMap::from([(id as i64, caption)]));
                }
            }
            classes.insert(
                name.clone(),
                ClassDef {
                    name: name.clone(),
                    caption: text(v, "caption"),
                    uid: class_uid,
                    category_uid,
                    category_name: text(cat, "caption"),
                    attributes,
                    profiles,
                    constraints: self.constraints(name, &self.events),
                },
            );
        }
        let ranges = self
            .types
            .iter()
            .filter_map(|(name, t)| {
                let r = t.get("range")?.as_array()?;
                Some((name.clone(), (r.first()?.as_f64()?, r.get(1)?.as_f64()?)))
            })
            .collect();
        Ok(Schema { version, classes, objects, ranges })
    }

    /// OCSF lists observable type ids on the types, objects and attributes that can be
    /// observables (`"observable": 2` on `ip_t`); `observable.type_id` takes them all.
    fn observable_types(&self, objects: &mut HashMap<String, ObjectDef>) {
        let mut ids = BTreeMap::new();
        let sources = self.types.values().chain(self.dictionary.values()).chain(self.object_files.values().map(|p| &self.raw[p]));
        for v in sources {
            if let Some(id) = v.get("observable").and_then(Value::as_i64) {
                ids.insert(id, text(v, "caption"));
            }
        }
        if let Some(e) = objects.get_mut("observable").and_then(|o| o.attributes.get_mut("type_id")).and_then(|a| a.enum_values.as_mut()) {
            for (id, caption) in ids {
                e.entry(id).or_insert(caption);
            }
        }
    }

    /// Profiles declared along the `extends` chain.
    fn profiles_of(&self, name: &str, out: &mut Vec<String>) {
        let Some(v) = self.events.get(name).map(|p| &self.raw[p]) else { return };
        if let Some(parent) = v.get("extends").and_then(Value::as_str) {
            self.profiles_of(parent, out);
        }
        for p in v.get("profiles").and_then(Value::as_array).into_iter().flatten() {
            if let Some(p) = p.as_str().filter(|p| !out.iter().any(|x| x == p)) {
                out.push(p.to_string());
            }
        }
    }

    /// The constraints of a class or object: its own, or else the nearest along `extends` (an
    /// empty `constraints` of its own lifts the parent's, as `file` does with `_entity`'s).
    fn constraints(&self, name: &str, index: &HashMap<String, String>) -> Constraints {
        let Some(v) = index.get(name).map(|p| &self.raw[p]) else { return Constraints::default() };
        match v.get("constraints") {
            Some(c) => {
                let list = |k: &str| c.get(k).and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).map(str::to_string).collect();
                Constraints { at_least_one: list("at_least_one"), just_one: list("just_one") }
            }
            None => match v.get("extends").and_then(Value::as_str) {
                Some(parent) if parent != name => self.constraints(parent, index),
                _ => Constraints::default(),
            },
        }
    }

    /// The attribute definitions of a class or object with its `extends` chain and `$include`s
    /// merged (child overrides parent, field by field), and the category found on the way.
    fn merged(&self, kind: &str, name: &str, index: &HashMap<String, String>) -> Result<(Map<String, Value>, Option<String>), SchemaError> {
        let path = index.get(name).ok_or_else(|| SchemaError::Invalid(format!("{kind}: {name} not found")))?;
        let v = &self.raw[path];
        let (mut attrs, mut category) = match v.get("extends").and_then(Value::as_str) {
            Some(parent) if index.contains_key(parent) => self.merged(kind, parent, index)?,
            _ => (Map::new(), None),
        };
        if let Some(c) = v.get("category").and_then(Value::as_str) {
            category = Some(c.to_string());
        }
        let own = obj(v, "attributes").cloned().unwrap_or_default();
        for inc in own.get("$include").and_then(Value::as_array).into_iter().flatten() {
            let inc = inc.as_str().unwrap_or_default();
            let file = self.raw.get(inc).ok_or_else(|| SchemaError::Invalid(format!("{name}: $include {inc} not found")))?;
            let profile = (text(file, "meta") == "profile").then(|| text(file, "name"));
            for (k, def) in obj(file, "attributes").into_iter().flatten() {
                let mut def = def.clone();
                if let (Some(p), Some(m)) = (&profile, def.as_object_mut()) {
                    m.entry("profile").or_insert(Value::String(p.clone()));
                }
                overlay(&mut attrs, k, &def);
            }
        }
        for (k, def) in &own {
            if k != "$include" {
                // An attribute the class or object defines itself is its own, not the
                // profile's, even where an included profile also brings it (`actor` of API
                // Activity; `actor` of a finding comes with the host profile only).
                if let Some(m) = attrs.get_mut(k).and_then(Value::as_object_mut) {
                    m.remove("profile");
                }
                overlay(&mut attrs, k, def);
            }
        }
        Ok((attrs, category))
    }

    fn attributes(&self, defs: &Map<String, Value>) -> Result<BTreeMap<String, Attribute>, SchemaError> {
        let mut out = BTreeMap::new();
        for (name, def) in defs {
            let dict = self.dictionary.get(name).ok_or_else(|| SchemaError::Invalid(format!("attribute {name} not in dictionary")))?;
            let type_name = def.get("type").or_else(|| dict.get("type")).and_then(Value::as_str).unwrap_or("string_t").to_string();
            let ty = self.resolve_type(&type_name);
            let mut enum_values: Option<BTreeMap<i64, String>> = None;
            for src in [dict.get("enum"), def.get("enum")].into_iter().flatten() {
                let e = enum_values.get_or_insert_with(BTreeMap::new);
                for (id, v) in src.as_object().into_iter().flatten() {
                    if let Ok(id) = id.parse::<i64>() {
                        e.insert(id, text(v, "caption"));
                    }
                }
            }
            let requirement = match def.get("requirement").and_then(Value::as_str) {
                Some("required") => Requirement::Required,
                Some("recommended") => Requirement::Recommended,
                _ => Requirement::Optional,
            };
            out.insert(
                name.clone(),
                Attribute {
                    name: name.clone(),
                    caption: text(dict, "caption"),
                    type_name,
                    ty,
                    is_array: dict.get("is_array").and_then(Value::as_bool).unwrap_or(false),
                    requirement,
                    enum_values,
                    sibling: dict.get("sibling").and_then(Value::as_str).map(str::to_string),
                    profile: def.get("profile").and_then(Value::as_str).map(str::to_string),
                    deprecated: def.get("@deprecated").is_some() || dict.get("@deprecated").is_some(),
                },
            );
        }
        Ok(out)
    }

    fn resolve_type(&self, type_name: &str) -> AttrType {
        let scalar = match type_name {
            "timestamp_t" => Scalar::Timestamp,
            "datetime_t" => Scalar::Datetime,
            "json_t" | "object" => Scalar::Json,
            "boolean_t" => Scalar::Boolean,
            "integer_t" => Scalar::Integer,
            "long_t" => Scalar::Long,
            "float_t" => Scalar::Float,
            "string_t" => Scalar::String,
            other => match self.types.get(other).and_then(|t| t.get("type")).and_then(Value::as_str) {
                Some(base) => return self.resolve_type(base),
                None if self.object_files.contains_key(other) => return AttrType::Object(other.to_string()),
                None => Scalar::String,
            },
        };
        AttrType::Scalar(scalar)
    }
}

/// Merges one attribute definition over another, field by field (`enum`s are unioned).
fn overlay(attrs: &mut Map<String, Value>, key: &str, def: &Value) {
    let entry = attrs.entry(key.to_string()).or_insert_with(|| Value::Object(Map::new()));
    let (Some(dst), Some(src)) = (entry.as_object_mut(), def.as_object()) else { return };
    for (k, v) in src {
        match (k.as_str(), dst.get_mut(k)) {
            ("enum", Some(Value::Object(e))) => {
                for (id, c) in v.as_object().into_iter().flatten() {
                    e.insert(id.clone(), c.clone());
                }
            }
            _ => {
                dst.insert(k.clone(), v.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_classes_with_their_uids_profiles_and_enums() {
        let s = schema();
        assert_eq!(s.version, OCSF_VERSION);
        let api = s.class("api_activity").unwrap();
        assert_eq!(api.uid, 6003);
        assert_eq!(s.class("6003").unwrap().name, "api_activity");
        assert_eq!(api.category_name, "Application Activity");
        for p in ["cloud", "datetime", "ai_operation"] {
            assert!(api.profiles.iter().any(|x| x == p), "{p} missing from {:?}", api.profiles);
        }
        assert_eq!(api.attributes["actor"].requirement, Requirement::Required);
        assert_eq!(api.attributes["actor"].ty, AttrType::Object("actor".into()));
        assert_eq!(api.attributes["cloud"].profile.as_deref(), Some("cloud"));
        assert_eq!(api.attributes["ai_model"].profile.as_deref(), Some("ai_operation"));
        assert_eq!(api.activity_name(4), Some("Delete"));
        assert_eq!(api.activity_name(99), Some("Other"));
        assert_eq!(api.attributes["time"].ty, AttrType::Scalar(Scalar::Timestamp));
        assert_eq!(s.class("authentication").unwrap().uid, 3002);
        assert_eq!(s.class("account_change").unwrap().uid, 3001);
        assert_eq!(s.class("detection_finding").unwrap().uid, 2004);
    }

    #[test]
    fn the_1_1_0_schema_resolves_its_includes() {
        let s = schema_1_1();
        assert_eq!(s.version, "1.1.0");
        let c = s.class("account_change").unwrap();
        assert_eq!(c.uid, 3001);
        for a in ["class_uid", "category_uid", "activity_id", "time", "metadata", "cloud", "user"] {
            assert!(c.attributes.contains_key(a), "{a} missing from 1.1.0 account_change: {:?}", c.attributes.keys().collect::<Vec<_>>());
        }
        assert_eq!(c.attributes["class_uid"].requirement, Requirement::Required);
        assert_eq!(c.attributes["class_uid"].enum_values.as_ref().unwrap().get(&3001).map(String::as_str), Some("Account Change"));
        assert_eq!(c.attributes["category_uid"].enum_values.as_ref().unwrap().keys().collect::<Vec<_>>(), vec![&3]);
        // 1.1.0 has no Detection Finding's `ai_operation` profile; it has the class.
        assert!(s.class("detection_finding").is_some());
    }

    #[test]
    fn objects_inherit_from_their_bases() {
        let user = schema().object("user").unwrap();
        // `name` and `uid` come from `_entity`.
        assert!(user.attributes.contains_key("uid"));
        assert_eq!(user.attributes["account"].ty, AttrType::Object("account".into()));
        assert_eq!(schema().object("endpoint").unwrap().attributes["ip"].ty, AttrType::Scalar(Scalar::String));
        assert_eq!(schema().object("network_endpoint").unwrap().attributes["port"].ty, AttrType::Scalar(Scalar::Integer));
        let obs = &schema().object("observable").unwrap().attributes["type_id"];
        let e = obs.enum_values.as_ref().unwrap();
        assert_eq!(e.get(&2).map(String::as_str), Some("IP Address"));
        assert_eq!(e.get(&4).map(String::as_str), Some("User Name"));
    }
}
