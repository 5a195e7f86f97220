//! What every rule, whatever its kind, tells a finding: id, title, severity, ATT&CK.

/// OCSF severity ids (1 Informational .. 5 Critical).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Informational = 1,
    Low = 2,
    Medium = 3,
    High = 4,
    Critical = 5,
}

impl Severity {
    pub fn parse(s: &str) -> Option<Severity> {
        Some(match s.to_ascii_lowercase().as_str() {
            "informational" | "info" => Severity::Informational,
            "low" => Severity::Low,
            "medium" => Severity::Medium,
            "high" => Severity::High,
            "critical" => Severity::Critical,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Severity::Informational => "Informational",
            Severity::Low => "Low",
            Severity::Medium => "Medium",
            Severity::High => "High",
            Severity::Critical => "Critical",
        }
    }
}

/// An ATT&CK technique (`T1562.008`) with the tactics the rule names for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attack {
    pub technique: String,
    pub tactics: Vec<String>,
}

/// One test case a rule carries: raw events (any source, a file or a directory) that must or
/// must not make it fire.
#[derive(Debug, Clone)]
pub struct Case {
    pub fires: bool,
    /// Relative to the rules directory.
    pub events: std::path::PathBuf,
}

/// Rule metadata shared by Sigma, SQL and pattern rules.
#[derive(Debug, Clone)]
pub struct RuleMeta {
    pub id: String,
    pub title: String,
    pub description: String,
    pub severity: Severity,
    /// `sigma`, `sql`, `pattern`, `correlation`.
    pub kind: &'static str,
    pub attacks: Vec<Attack>,
    pub references: Vec<String>,
}

impl RuleMeta {
    /// The metadata of a TOML rule (pattern, behaviour): techniques each carry all the tactics.
    pub fn from_toml(kind: &'static str, id: &str, title: &str, description: &str, severity: &str, attack: &[String], tactics: &[String]) -> Result<RuleMeta, String> {
        let severity = Severity::parse(severity).ok_or_else(|| format!("severity `{severity}`: expected informational, low, medium, high or critical"))?;
        let attacks = attack.iter().map(|t| Attack { technique: t.to_ascii_uppercase(), tactics: tactics.to_vec() }).collect();
        Ok(RuleMeta { id: id.into(), title: title.into(), description: description.into(), severity, kind, attacks, references: Vec::new() })
    }
}

/// ATT&CK techniques and tactics from Sigma-style tags (`attack.t1562.008`,
/// `attack.defense-evasion`): each technique carries every tactic the tags name.
pub fn attacks_from_tags<S: AsRef<str>>(tags: &[S]) -> Vec<Attack> {
    let mut techniques = Vec::new();
    let mut tactics = Vec::new();
    for t in tags {
        let Some(rest) = t.as_ref().strip_prefix("attack.") else { continue };
        let is_technique = rest.len() >= 5 && rest.as_bytes()[0].eq_ignore_ascii_case(&b't') && rest[1..5].bytes().all(|b| b.is_ascii_digit());
        if is_technique {
            techniques.push(rest.to_ascii_uppercase());
        } else if !rest.starts_with('g') || !rest[1..].bytes().all(|b| b.is_ascii_digit()) {
            tactics.push(rest.to_string());
        }
    }
    techniques.into_iter().map(|technique| Attack { technique, tactics: tactics.clone() }).collect()
}

/// Files under `dir` (recursively) whose extension is one of `exts`, sorted, hidden ones (a
/// file being written, an editor's swap file) left out: how every rule kind finds its files.
pub fn files_with(dir: &std::path::Path, exts: &[&str]) -> Result<Vec<std::path::PathBuf>, String> {
    fn walk(dir: &std::path::Path, exts: &[&str], out: &mut Vec<std::path::PathBuf>) -> std::io::Result<()> {
        for e in std::fs::read_dir(dir)? {
            let p = e?.path();
            if p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')) {
                continue;
            }
            if p.is_dir() {
                walk(&p, exts, out)?;
            } else if p.extension().and_then(|x| x.to_str()).is_some_and(|x| exts.contains(&x)) {
                out.push(p);
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(dir, exts, &mut out).map_err(|e| format!("{}: {e}", dir.display()))?;
    out.sort();
    Ok(out)
}

/// `files_with`, read: (path, text) pairs.
pub fn read_files(dir: &std::path::Path, exts: &[&str]) -> Result<Vec<(std::path::PathBuf, String)>, String> {
    files_with(dir, exts)?.into_iter().map(|f| std::fs::read_to_string(&f).map(|t| (f.clone(), t)).map_err(|e| format!("{}: {e}", f.display()))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_to_attacks() {
        let a = attacks_from_tags(&["attack.defense-evasion", "attack.t1562.008", "attack.g0016", "detection.threat-hunting"]);
        assert_eq!(a, vec![Attack { technique: "T1562.008".into(), tactics: vec!["defense-evasion".into()] }]);
        assert_eq!(Severity::parse("HIGH"), Some(Severity::High));
    }
}
