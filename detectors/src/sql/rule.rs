//! A SQL rule file: a `-- key: value` header, then the query (docs/detection/sql.md).

use std::path::{Path, PathBuf};

use crate::rule::{Attack, Case, RuleMeta, Severity};

/// An event-time window: tumbling when `slide_ms == size_ms`, hopping when smaller.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Window {
    pub size_ms: i64,
    pub slide_ms: i64,
}

#[derive(Debug, Clone)]
pub struct SqlRule {
    pub meta: RuleMeta,
    pub path: PathBuf,
    /// The class tables the query reads (`api_activity`, ...).
    pub tables: Vec<String>,
    /// None: the query runs on each batch (per-event rules).
    pub window: Option<Window>,
    pub lateness_ms: i64,
    /// Output columns whose values make the finding's group key.
    pub group_by: Vec<String>,
    /// Rows of a batch the rule keeps (its state holds only those): `filter`, or for one table
    /// `filter.<table>`.
    pub filter: Option<String>,
    pub table_filters: std::collections::HashMap<String, String>,
    pub query: String,
    pub budget_bytes: usize,
    pub cases: Vec<Case>,
}

/// `30s`, `5m`, `1h`, `2d` in milliseconds.
pub fn duration_ms(s: &str) -> Option<i64> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit())?;
    let n: i64 = s[..split].parse().ok()?;
    let unit = match &s[split..] {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return None,
    };
    Some(n * unit)
}

fn bytes(s: &str) -> Option<usize> {
    let s = s.trim();
    let (n, mult) = if let Some(n) = s.strip_suffix("MB") {
        (n, 1 << 20)
    } else if let Some(n) = s.strip_suffix("KB") {
        (n, 1 << 10)
    } else if let Some(n) = s.strip_suffix("GB") {
        (n, 1 << 30)
    } else {
        (s, 1)
    };
    n.trim().parse::<usize>().ok().map(|n| n * mult)
}

fn list(v: &str) -> Vec<String> {
    v.split(',').map(|x| x.trim().to_string()).filter(|x| !x.is_empty()).collect()
}

impl SqlRule {
    /// The filter for rows of `table`.
    pub fn filter_for(&self, table: &str) -> Option<&str> {
        self.table_filters.get(table).map(String::as_str).or(self.filter.as_deref())
    }

    /// Parses a rule; errors name the key and say what is expected.
    pub fn parse(path: &Path, text: &str) -> Result<SqlRule, String> {
        let (mut id, mut title, mut desc, mut severity) = (None, None, Vec::new(), None);
        let (mut techniques, mut tactics, mut tables, mut window, mut lateness) = (Vec::new(), Vec::new(), Vec::new(), None, 60_000);
        let (mut group_by, mut filter, mut budget, mut cases, mut references) = (Vec::new(), None, 32 << 20, Vec::new(), Vec::new());
        let mut table_filters: std::collections::HashMap<String, String> = std::collections::HashMap::new();
        let mut query = String::new();
        let mut in_header = true;
        for line in text.lines() {
            let header = in_header.then(|| line.trim().strip_prefix("--")).flatten().and_then(|l| l.split_once(':')).filter(|(k, _)| !k.trim().contains(' ') && !k.trim().is_empty());
            let Some((key, value)) = header else {
                if in_header && (line.trim().is_empty() || line.trim().starts_with("--")) {
                    continue;
                }
                in_header = false;
                query.push_str(line);
                query.push('\n');
                continue;
            };
            let v = value.trim();
            let bad = |what: &str| format!("{}: `{}: {v}`: {what}", path.display(), key.trim());
            match key.trim() {
                "id" => id = Some(v.to_string()),
                "title" => title = Some(v.to_string()),
                "description" => desc.push(v.to_string()),
                "severity" => severity = Some(Severity::parse(v).ok_or_else(|| bad("expected informational, low, medium, high or critical"))?),
                "attack" => techniques = list(v).into_iter().map(|t| t.to_ascii_uppercase()).collect(),
                "tactics" => tactics = list(v),
                "references" => references = list(v),
                "table" | "tables" => tables = list(v),
                "window" => {
                    window = match v {
                        "none" => None,
                        _ => {
                            let (size, slide) = v.split_once(" every ").unwrap_or((v, v));
                            let size = duration_ms(size).ok_or_else(|| bad("expected `5m` (tumbling) or `10m every 5m` (hopping)"))?;
                            let slide = duration_ms(slide).ok_or_else(|| bad("expected `5m` (tumbling) or `10m every 5m` (hopping)"))?;
                            if slide <= 0 || slide > size || size % slide != 0 {
                                return Err(bad("the slide must divide the window size"));
                            }
                            Some(Window { size_ms: size, slide_ms: slide })
                        }
                    }
                }
                "lateness" => lateness = duration_ms(v).ok_or_else(|| bad("expected a duration such as `1m`"))?,
                "group_by" => group_by = list(v),
                // A long filter continues over several `-- filter:` lines.
                "filter" => filter = Some(filter.map_or_else(|| v.to_string(), |f: String| format!("{f} {v}"))),
                k if k.starts_with("filter.") => {
                    let f = table_filters.entry(k["filter.".len()..].to_string()).or_default();
                    if !f.is_empty() {
                        f.push(' ');
                    }
                    f.push_str(v);
                }
                "budget" => budget = bytes(v).ok_or_else(|| bad("expected a size such as `64MB`"))?,
                "fires" => cases.push(Case { fires: true, events: PathBuf::from(v) }),
                "quiet" => cases.push(Case { fires: false, events: PathBuf::from(v) }),
                other => return Err(format!("{}: unknown header key `{other}` (known: id, title, description, severity, attack, tactics, references, table, window, lateness, group_by, filter, filter.<table>, budget, fires, quiet)", path.display())),
            }
        }
        let need = |v: Option<String>, k: &str| v.ok_or_else(|| format!("{}: the header needs `-- {k}: ...`", path.display()));
        let id = need(id, "id")?;
        let title = need(title, "title")?;
        if tables.is_empty() {
            return Err(format!("{}: the header needs `-- table: <class table>` (e.g. api_activity)", path.display()));
        }
        if query.trim().is_empty() {
            return Err(format!("{}: no query after the header", path.display()));
        }
        let attacks = techniques.into_iter().map(|technique| Attack { technique, tactics: tactics.clone() }).collect();
        let meta = RuleMeta { id, title, description: desc.join(" "), severity: severity.unwrap_or(Severity::Medium), kind: "sql", attacks, references };
        for t in table_filters.keys() {
            if !tables.contains(t) {
                return Err(format!("{}: `filter.{t}` names a table the rule does not read (tables: {})", path.display(), tables.join(", ")));
            }
        }
        Ok(SqlRule { meta, path: path.to_path_buf(), tables, window, lateness_ms: lateness, group_by, filter, table_filters, query, budget_bytes: budget, cases })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_and_query() {
        let text = "-- id: x.y\n-- title: T\n-- description: one\n-- description: two\n-- severity: high\n-- attack: t1485\n-- tactics: impact\n-- table: api_activity, account_change\n-- window: 10m every 5m\n-- group_by: agent\n-- filter: is_agent(actor)\n-- fires: tests/a.jsonl\n\nSELECT 1\n-- a comment in the query\nFROM api_activity\n";
        let r = SqlRule::parse(Path::new("r.sql"), text).unwrap();
        assert_eq!(r.meta.description, "one two");
        assert_eq!(r.window, Some(Window { size_ms: 600_000, slide_ms: 300_000 }));
        assert_eq!(r.tables, vec!["api_activity", "account_change"]);
        assert_eq!(r.meta.attacks[0].technique, "T1485");
        assert!(r.query.starts_with("SELECT 1") && r.query.contains("FROM api_activity"));
        assert!(r.cases[0].fires);
        let e = SqlRule::parse(Path::new("r.sql"), "-- id: x\n-- title: t\n-- table: api_activity\n-- window: 7m every 5m\nSELECT 1").unwrap_err();
        assert!(e.contains("`window: 7m every 5m`"), "{e}");
        assert!(SqlRule::parse(Path::new("r.sql"), "-- id: x\n-- title: t\nSELECT 1").unwrap_err().contains("table"));
        assert!(SqlRule::parse(Path::new("r.sql"), "-- id: x\n-- colour: red\n").unwrap_err().contains("unknown header key `colour`"));
    }
}
