//! Field-by-field comparison of our output with the ocsf-examples reference pairs.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::Value;

use super::*;

/// Flattens JSON to dotted leaf paths (arrays by index), leaving nulls out.
pub fn flatten(prefix: &str, v: &Value, out: &mut BTreeMap<String, Value>) {
    match v {
        Value::Object(o) => o.iter().for_each(|(k, v)| flatten(&if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") }, v, out)),
        Value::Array(a) => a.iter().enumerate().for_each(|(i, v)| flatten(&format!("{prefix}[{i}]"), v, out)),
        Value::Null => {}
        v => {
            out.insert(prefix.to_string(), v.clone());
        }
    }
}

fn same_json_text(a: &Value, b: &Value) -> bool {
    let parse = |v: &Value| match v {
        Value::String(s) => serde_json::from_str::<Value>(s).unwrap_or(v.clone()),
        v => v.clone(),
    };
    a == b || parse(a) == parse(b)
}

/// `a[0].b[12].c` -> `a.b.c`.
fn strip_indices(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut skip = false;
    for ch in path.chars() {
        match ch {
            '[' => skip = true,
            ']' => skip = false,
            c if !skip => out.push(c),
            _ => {}
        }
    }
    out
}

/// Normalizes each raw reference event with `kind` and compares every leaf of the reference
/// with ours, except the paths in `known` (documented differences) and the `(pair dir, path)`
/// slips of the reference itself. Every observable of the reference must be ours too (unless
/// `maps_elsewhere` says it is mapped under another name), and every unmapped field of the
/// reference must be kept by us, unmapped or mapped. Returns (fields compared and equal,
/// mismatches), and prints the leaf agreement: the share of all the references' leaves (outside
/// `unmapped`) that ours holds with the same value.
pub fn compare(kind: &str, pairs: &[(PathBuf, PathBuf)], known: &[&str], slips: &[(&str, &str)], maps_elsewhere: impl Fn(&Value) -> bool) -> (usize, Vec<String>) {
    let mut compared = 0;
    let (mut leaves, mut agreeing) = (0usize, 0usize);
    let mut mismatches = Vec::new();
    for (raw_path, ocsf_path) in pairs {
        let (raw_path, ocsf_path) = (raw_path.clone(), ocsf_path.clone());
        let dir = ocsf_path.parent().unwrap().to_path_buf();
        let raw = std::fs::read(&raw_path).unwrap();
        // Two upstream files carry a trailing comma; strict JSON needs it gone.
        let text = std::fs::read_to_string(&ocsf_path).unwrap().replace("},\n    },", "}\n    },");
        let reference: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        let run = normalize_as(kind, &[(&raw, "ref")]);
        assert_valid(&run);
        let events = run.events_json();
        assert_eq!(events.len(), 1, "{}", dir.display());
        let ours = &events[0].1;
        assert_eq!(ours["class_uid"], reference["class_uid"], "{}: class", dir.display());

        let (mut a, mut b) = (BTreeMap::new(), BTreeMap::new());
        flatten("", ours, &mut a);
        flatten("", &reference, &mut b);
        for (path, want) in b.iter().filter(|(p, _)| !p.starts_with("unmapped")) {
            leaves += 1;
            if a.get(path).is_some_and(|got| same_json_text(got, want)) {
                agreeing += 1;
            }
        }
        for (path, want) in &b {
            if slips.iter().any(|(d, p)| dir.ends_with(d) && path == p) {
                continue;
            }
            if known.iter().any(|k| path == k || path.starts_with(&format!("{k}.")) || path.starts_with(&format!("{k}["))) {
                continue;
            }
            if let Some(got) = a.get(path) {
                if same_json_text(got, want) {
                    compared += 1;
                } else {
                    mismatches.push(format!("{}: {path}: ours {got}, reference {want}", dir.display()));
                }
            }
        }
        // Every observable of the reference (name and value) is ours too.
        for o in reference["observables"].as_array().into_iter().flatten() {
            let found = ours["observables"].as_array().into_iter().flatten().any(|x| x["name"] == o["name"] && x["value"] == o["value"]);
            let maps_elsewhere = maps_elsewhere(o);
            assert!(found || maps_elsewhere, "{}: observable {o}", dir.display());
        }
        // Every unmapped field of the reference is kept by us, unmapped or mapped.
        let mut ours_unmapped = BTreeMap::new();
        flatten("", &ours["unmapped"], &mut ours_unmapped);
        // Our mapped leaves, with JSON-text fields (api.request.data) opened up.
        let mut ours_leaves = Vec::new();
        for (p, x) in &a {
            if p.starts_with("unmapped") {
                continue;
            }
            match x.as_str().and_then(|s| serde_json::from_str::<Value>(s).ok()).filter(|j| j.is_object() || j.is_array()) {
                Some(j) => {
                    let mut inner = BTreeMap::new();
                    flatten("", &j, &mut inner);
                    ours_leaves.extend(inner.into_values());
                }
                None => ours_leaves.push(x.clone()),
            }
        }
        let mut ref_unmapped = BTreeMap::new();
        flatten("", &reference["unmapped"], &mut ref_unmapped);
        for (k, v) in &ref_unmapped {
            let text = |v: &Value| v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string());
            // The references flatten arrays as `a[].b` and join the values with commas.
            let key = k.replace("[]", "");
            let kept_values: Vec<String> = ours_unmapped.iter().filter(|(p, _)| strip_indices(p) == key).map(|(_, x)| text(x)).collect();
            let kept = kept_values.contains(&text(v)) || text(v).split(',').all(|part| kept_values.iter().any(|x| x == part));
            // ... or mapped: the same value stands in one of our OCSF fields.
            let in_leaves = |t: &str| ours_leaves.iter().any(|x| text(x) == t);
            let mapped = in_leaves(&text(v)) || text(v).split(',').all(in_leaves);
            assert!(kept || mapped, "{}: unmapped {k}={v} lost (ours: {:?})", dir.display(), ours_unmapped);
        }
    }
    eprintln!("leaf agreement with the {kind} references: {agreeing} of {leaves} leaves ({:.2})", agreeing as f64 / leaves.max(1) as f64);
    (compared, mismatches)
}
