//! Small helpers over simd-json borrowed values, shared by the decoder and the normalizers.

use simd_json::prelude::Writable;
use simd_json::{BorrowedValue, StaticNode};

pub fn get<'v, 'a>(v: &'v BorrowedValue<'a>, key: &str) -> Option<&'v BorrowedValue<'a>> {
    match v {
        BorrowedValue::Object(o) => o.get(key),
        _ => None,
    }
}

pub fn get_path<'v, 'a>(v: &'v BorrowedValue<'a>, path: &[&str]) -> Option<&'v BorrowedValue<'a>> {
    path.iter().try_fold(v, |v, k| get(v, k))
}

pub fn str_of<'v>(v: Option<&'v BorrowedValue<'_>>) -> Option<&'v str> {
    match v {
        Some(BorrowedValue::String(s)) => Some(s),
        _ => None,
    }
}

/// An integer, or a string holding one (`"120"`, as some AWS logs write numbers).
pub fn i64_of(v: Option<&BorrowedValue<'_>>) -> Option<i64> {
    match v? {
        BorrowedValue::Static(StaticNode::I64(n)) => Some(*n),
        BorrowedValue::Static(StaticNode::U64(n)) => i64::try_from(*n).ok(),
        BorrowedValue::Static(StaticNode::F64(f)) if f.fract() == 0.0 && f.abs() < 9.0e15 => Some(*f as i64),
        BorrowedValue::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A number, or a string holding one.
pub fn f64_of(v: Option<&BorrowedValue<'_>>) -> Option<f64> {
    match v? {
        BorrowedValue::Static(StaticNode::F64(f)) => Some(*f),
        BorrowedValue::Static(StaticNode::I64(n)) => Some(*n as f64),
        BorrowedValue::Static(StaticNode::U64(n)) => Some(*n as f64),
        BorrowedValue::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// `true`/`"true"`/`"yes"` (any case) as a boolean.
pub fn bool_of(v: Option<&BorrowedValue<'_>>) -> Option<bool> {
    match v? {
        BorrowedValue::Static(StaticNode::Bool(b)) => Some(*b),
        BorrowedValue::String(s) if s.eq_ignore_ascii_case("true") || s.eq_ignore_ascii_case("yes") => Some(true),
        BorrowedValue::String(s) if s.eq_ignore_ascii_case("false") || s.eq_ignore_ascii_case("no") => Some(false),
        _ => None,
    }
}

pub fn is_null(v: &BorrowedValue<'_>) -> bool {
    matches!(v, BorrowedValue::Static(StaticNode::Null))
}

/// Writes `v` as JSON into `buf` (cleared first) and returns it as text.
pub fn encode<'b>(v: &BorrowedValue<'_>, buf: &'b mut Vec<u8>) -> &'b str {
    buf.clear();
    let _ = v.write(buf); // writing to a Vec cannot fail
                          // simd-json writes valid UTF-8 JSON.
    std::str::from_utf8(buf).unwrap_or_default()
}

/// The source fields a mapping consumes, as a tree of sorted names (built once from dotted
/// paths): a name maps to `None` when consumed whole, to the sub-tree when only partly.
#[derive(Debug, Default)]
pub struct Mapped {
    entries: Vec<(String, Option<Mapped>)>,
}

impl Mapped {
    pub fn new(paths: &[&str]) -> Mapped {
        let mut m = Mapped::default();
        for p in paths {
            m.insert(p);
        }
        m
    }

    fn insert(&mut self, path: &str) {
        let (head, rest) = match path.split_once('.') {
            Some((h, r)) => (h, Some(r)),
            None => (path, None),
        };
        let i = match self.entries.binary_search_by(|(k, _)| k.as_str().cmp(head)) {
            Ok(i) => i,
            Err(i) => {
                self.entries.insert(i, (head.to_string(), Some(Mapped::default())));
                i
            }
        };
        match (rest, &mut self.entries[i].1) {
            (None, slot) => *slot = None,
            (Some(r), Some(sub)) => sub.insert(r),
            (Some(_), None) => {} // already consumed whole
        }
    }

    pub fn find(&self, key: &str) -> Option<&Option<Mapped>> {
        self.entries.binary_search_by(|(k, _)| k.as_str().cmp(key)).ok().map(|i| &self.entries[i].1)
    }
}

/// How much of a member a mapping consumed.
pub enum Consumed<'m> {
    Whole,
    Part(&'m Mapped),
    Nothing,
}

/// Writes the parts of an object that `mapped` does not consume as JSON; `false` if nothing is
/// left. Objects emptied by the subtraction are left out. Top-level keys in `keep` are written
/// even when `mapped` consumes them.
pub fn write_unmapped(v: &BorrowedValue<'_>, mapped: &Mapped, keep: &[&str], out: &mut Vec<u8>) -> bool {
    write_members_except(
        v,
        |_, k| match mapped.find(k) {
            _ if !keep.is_empty() && keep.contains(&k) => Consumed::Nothing,
            Some(None) => Consumed::Whole,
            Some(Some(sub)) => Consumed::Part(sub),
            None => Consumed::Nothing,
        },
        out,
    )
}

/// As [`write_unmapped`], with the caller classifying each member (by its position in the
/// object's iteration order, or its key): a normalizer that already classified the members
/// while reading them does not look them up twice.
pub fn write_members_except<'m>(v: &BorrowedValue<'_>, consumed: impl Fn(usize, &str) -> Consumed<'m>, out: &mut Vec<u8>) -> bool {
    let BorrowedValue::Object(o) = v else { return false };
    let mut first = true;
    let start = out.len();
    out.push(b'{');
    for (i, (k, child)) in o.iter().enumerate() {
        if is_null(child) {
            continue;
        }
        let sub = match consumed(i, k) {
            Consumed::Whole => continue,
            Consumed::Part(sub) => Some(sub),
            Consumed::Nothing => None,
        };
        let mark = out.len();
        if !first {
            out.push(b',');
        }
        let _ = BorrowedValue::String(k.clone()).write(&mut *out);
        out.push(b':');
        let wrote = match sub {
            None => {
                let _ = child.write(&mut *out);
                true
            }
            Some(sub) => write_unmapped(child, sub, &[], out),
        };
        if wrote {
            first = false;
        } else {
            out.truncate(mark);
        }
    }
    if first {
        out.truncate(start);
        return false;
    }
    out.push(b'}');
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unmapped_subtracts_mapped_paths() {
        let mut bytes = br#"{"a":1,"b":{"c":2,"d":{"e":3}},"f":null,"g":{"h":1}}"#.to_vec();
        let v = simd_json::to_borrowed_value(&mut bytes).unwrap();
        let mut out = Vec::new();
        assert!(write_unmapped(&v, &Mapped::new(&["a", "b.d.e", "g.h"]), &[], &mut out));
        let got: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(got, serde_json::json!({"b":{"c":2}}));
        out.clear();
        let whole = Mapped::new(&["a", "b", "g", "b.c"]);
        assert!(!write_unmapped(&v, &whole, &[], &mut out));
        assert!(out.is_empty());
        assert!(write_unmapped(&v, &whole, &["a"], &mut out));
        assert_eq!(out, br#"{"a":1}"#);
    }
}
