//! Sigma values and modifiers to what we test per field: regex patterns (all of a field's
//! patterns become one automaton), null/exists, CIDR, numeric comparison, field references.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ocelot_normalize::net::Net;
use rsigma_parser::{Modifier, SigmaString, SigmaValue, SpecialChar, StringPart};

/// How a string value is placed against the field's text.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Anchor {
    Whole,
    Contains,
    StartsWith,
    EndsWith,
}

/// One value test of a detection item.
#[derive(Debug, Clone)]
pub enum Test {
    /// Any of these patterns (ids into the rule set's patterns) matched the field.
    Patterns(Vec<u32>),
    /// None of these patterns matched (`neq`).
    NotPatterns(Vec<u32>),
    /// The field is null or absent (`field: null`).
    Null,
    /// `exists`: the field is present (true) or absent (false).
    Exists(bool),
    Cidr(Net),
    Cmp(Cmp, f64),
    /// `fieldref`: the field's value against another field's, by index into the rule set fields.
    FieldRef {
        other: usize,
        anchor: Anchor,
        cased: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Cmp {
    Gt,
    Gte,
    Lt,
    Lte,
}

impl Cmp {
    pub fn holds(self, a: f64, b: f64) -> bool {
        match self {
            Cmp::Gt => a > b,
            Cmp::Gte => a >= b,
            Cmp::Lt => a < b,
            Cmp::Lte => a <= b,
        }
    }
}

/// Regex text for one plain/wildcard string under the item's modifiers.
pub fn string_pattern(s: &SigmaString, anchor: Anchor, cased: bool, windash: bool) -> String {
    let mut body = String::new();
    for part in &s.parts {
        match part {
            StringPart::Plain(t) if windash => body.push_str(&windash_regex(t)),
            StringPart::Plain(t) => body.push_str(&escape(t)),
            StringPart::Special(SpecialChar::WildcardMulti) => body.push_str(".*"),
            StringPart::Special(SpecialChar::WildcardSingle) => body.push('.'),
        }
    }
    anchored(&body, anchor, if cased { "(?s)" } else { "(?si)" })
}

fn anchored(body: &str, anchor: Anchor, flags: &str) -> String {
    match anchor {
        Anchor::Whole => format!("{flags}^(?:{body})$"),
        Anchor::Contains => format!("{flags}(?:{body})"),
        Anchor::StartsWith => format!("{flags}^(?:{body})"),
        Anchor::EndsWith => format!("{flags}(?:{body})$"),
    }
}

/// `windash`: a dash or slash that starts an option (`\B[-/]\b`, as pySigma places it) may be
/// any of `-`, `/`, en dash, em dash, horizontal bar.
fn windash_regex(t: &str) -> String {
    let chars: Vec<char> = t.chars().collect();
    let word = |c: Option<&char>| c.is_some_and(|c| c.is_alphanumeric() || *c == '_');
    let mut out = String::new();
    for (i, c) in chars.iter().enumerate() {
        let prev_word = i > 0 && word(chars.get(i - 1));
        if (*c == '-' || *c == '/') && !prev_word && word(chars.get(i + 1)) {
            out.push_str("(?:-|/|\u{2013}|\u{2014}|\u{2015})");
        } else {
            out.push_str(&escape(&c.to_string()));
        }
    }
    out
}

/// `t` as a regex matching it literally.
fn escape(t: &str) -> String {
    let mut out = String::with_capacity(t.len());
    for c in t.chars() {
        if "\\.+*?()|[]{}^$#&-~".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Literal encodings of a plain value for `base64`, `base64offset` and the UTF-16 modifiers,
/// in pySigma's way (each alternative is matched like the plain value would be).
pub fn encodings(plain: &str, modifiers: &[Modifier]) -> Vec<String> {
    let bytes: Vec<u8> = if modifiers.contains(&Modifier::Wide) {
        plain.encode_utf16().flat_map(u16::to_le_bytes).collect()
    } else if modifiers.contains(&Modifier::Utf16be) {
        plain.encode_utf16().flat_map(u16::to_be_bytes).collect()
    } else if modifiers.contains(&Modifier::Utf16) {
        [0xFF, 0xFE].into_iter().chain(plain.encode_utf16().flat_map(u16::to_le_bytes)).collect()
    } else {
        plain.as_bytes().to_vec()
    };
    if modifiers.contains(&Modifier::Base64Offset) {
        // The three shifts of the value inside a longer base64 text, trimmed of the characters
        // that depend on its neighbours.
        const START: [usize; 3] = [0, 2, 3];
        const END: [usize; 3] = [0, 3, 2];
        (0..3)
            .map(|i| {
                let mut shifted = vec![b' '; i];
                shifted.extend_from_slice(&bytes);
                let enc = B64.encode(&shifted);
                let end = enc.len() - END[(bytes.len() + i) % 3];
                enc.get(START[i]..end).unwrap_or_default().to_string()
            })
            .collect()
    } else if modifiers.contains(&Modifier::Base64) {
        vec![B64.encode(&bytes)]
    } else {
        vec![String::from_utf8_lossy(&bytes).into_owned()]
    }
}

/// Text of a non-string value as compared against field text.
pub fn scalar_text(v: &SigmaValue) -> Option<String> {
    match v {
        SigmaValue::Integer(n) => Some(n.to_string()),
        SigmaValue::Float(f) => Some(f.to_string()),
        SigmaValue::Bool(b) => Some(b.to_string()),
        SigmaValue::String(s) => Some(s.original.clone()),
        SigmaValue::Null => None,
    }
}

pub fn number(v: &SigmaValue) -> Option<f64> {
    match v {
        SigmaValue::Integer(n) => Some(*n as f64),
        SigmaValue::Float(f) => Some(*f),
        SigmaValue::String(s) => s.original.trim().parse().ok(),
        _ => None,
    }
}

/// `re` with its flags (`i`, `m`, `s`); Sigma regexes are case-sensitive and unanchored.
pub fn regex_pattern(re: &str, modifiers: &[Modifier]) -> String {
    let mut flags = String::new();
    for (m, f) in [(Modifier::IgnoreCase, 'i'), (Modifier::Multiline, 'm'), (Modifier::DotAll, 's')] {
        if modifiers.contains(&m) {
            flags.push(f);
        }
    }
    if flags.is_empty() {
        re.to_string()
    } else {
        format!("(?{flags}){re}")
    }
}

/// Expands `%name%` placeholders (`expand`) from the configured values.
pub fn expand(s: &str, placeholders: &std::collections::HashMap<String, Vec<String>>) -> Result<Vec<String>, String> {
    let mut out = vec![String::new()];
    let mut rest = s;
    while let Some(start) = rest.find('%') {
        let Some(len) = rest[start + 1..].find('%') else { break };
        let name = &rest[start + 1..start + 1 + len];
        let values = placeholders.get(name).ok_or_else(|| format!("placeholder %{name}% has no value (give it in the `ocelot run` config: [detect.placeholders] {name} = [...])"))?;
        let prefix = &rest[..start];
        out = out.iter().flat_map(|o| values.iter().map(move |v| format!("{o}{prefix}{v}"))).collect();
        rest = &rest[start + len + 2..];
    }
    for o in &mut out {
        o.push_str(rest);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64offset_matches_pysigma() {
        // pySigma: "/bin/sh" base64offset -> L2Jpbi9za, 9iaW4vc2, vYmluL3No
        assert_eq!(encodings("/bin/sh", &[Modifier::Base64Offset]), vec!["L2Jpbi9za", "9iaW4vc2", "vYmluL3No"]);
        assert_eq!(encodings("abc", &[Modifier::Base64]), vec!["YWJj"]);
    }

    #[test]
    fn cidr_contains() {
        let n = Net::parse("10.0.0.0/8").unwrap();
        assert!(n.contains("10.2.3.4".parse().unwrap()));
        assert!(!n.contains("11.2.3.4".parse().unwrap()));
        assert!(!n.contains("::1".parse().unwrap()));
        assert!(Net::parse("2001:db8::/32").unwrap().contains("2001:db8::5".parse().unwrap()));
    }

    #[test]
    fn windash_and_expand() {
        assert_eq!(windash_regex("a -x"), format!("a (?:-|/|\u{2013}|\u{2014}|\u{2015})x"));
        let p = [("ips".to_string(), vec!["1".to_string(), "2".to_string()])].into_iter().collect();
        assert_eq!(expand("x%ips%y", &p).unwrap(), vec!["x1y", "x2y"]);
        assert!(expand("%nope%", &p).is_err());
    }
}
