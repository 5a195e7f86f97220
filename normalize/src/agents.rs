//! The agent registry: which AI agent made a CloudTrail call that arrives without agent logs,
//! recognized by its user agent (SDK app ids set through `AWS_SDK_UA_APP_ID`, tool names), the
//! role it assumed, the role session name, or the `sourceIdentity` it set. Each field's patterns
//! of all agents are compiled into one multi-pattern automaton (regex-automata), so a record
//! costs one search per field, whatever the number of agents. See `docs/agents.md`.
//!
//! An agent as `[[agents]]` declares it ([`AgentRule`]) also says where it may act
//! ([`Scope`]); the detectors' behaviour rules read that.

use regex_automata::meta::{self, Regex};
use regex_automata::{Input, MatchKind, PatternSet};
use serde::{Deserialize, Serialize};

use crate::net::Net;

/// One agent, as written in `[[agents]]`: its name, the regexes (unanchored, Rust regex syntax,
/// matched against the field lowercased) that recognize it, any one of which names it, and its
/// declared scope.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AgentRule {
    pub name: String,
    /// `actor.app_uid`; the name when absent.
    #[serde(default)]
    pub uid: Option<String>,
    #[serde(default)]
    pub user_agent: Vec<String>,
    #[serde(default)]
    pub role_arn: Vec<String>,
    #[serde(default)]
    pub session_name: Vec<String>,
    #[serde(default)]
    pub source_identity: Vec<String>,
    /// Session tags set when the agent's role session began (`AssumeRole*` requests'
    /// `tags`): tag key -> regex on its value.
    #[serde(default)]
    pub principal_tags: std::collections::BTreeMap<String, String>,
    /// Where the agent may act and from where it calls (rules `agent-out-of-scope` and
    /// `agent-foreign-client`). Empty lists declare nothing.
    #[serde(default)]
    pub scope: Scope,
}

/// An agent's declared scope. Values compare without case.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Scope {
    /// AWS account ids it may act in (`recipientAccountId`).
    #[serde(default)]
    pub accounts: Vec<String>,
    /// Regions it may act in (`awsRegion`).
    #[serde(default)]
    pub regions: Vec<String>,
    /// Services it may call: `s3` or `s3.amazonaws.com` (`eventSource`).
    #[serde(default)]
    pub services: Vec<String>,
    /// Networks its calls come from (CIDR; `sourceIPAddress`).
    #[serde(default)]
    pub source_ips: Vec<String>,
}

impl AgentRule {
    /// Whether the entry names the agent by its credentials (role, session, source identity,
    /// session tags), so that a call made with them by another client can be told apart.
    pub fn has_credential_patterns(&self) -> bool {
        !(self.role_arn.is_empty() && self.session_name.is_empty() && self.source_identity.is_empty() && self.principal_tags.is_empty())
    }
}

impl Scope {
    /// The declared networks, parsed; the error names the key and the bad value.
    pub fn networks(&self) -> Result<Vec<Net>, String> {
        self.source_ips.iter().map(|s| Net::parse(s).ok_or_else(|| format!("scope.source_ips: `{s}` is not an IP address or network (write 10.0.0.0/8 or 2001:db8::/32)"))).collect()
    }
}

/// A service as scopes name it: `s3` for `s3.amazonaws.com`, lowercased.
pub fn service_key(s: &str) -> String {
    s.trim().trim_end_matches(".amazonaws.com").to_ascii_lowercase()
}

/// What a CloudTrail record says about who called.
#[derive(Debug, Default, Clone, Copy)]
pub struct Caller<'a> {
    pub user_agent: Option<&'a str>,
    pub role_arn: Option<&'a str>,
    pub session_name: Option<&'a str>,
    pub source_identity: Option<&'a str>,
    /// Session tags as `key=value`.
    pub tags: &'a [String],
}

/// The agents shipped with Ocelot: well-known AI coding agents and agent frameworks, by the
/// marks they leave in CloudTrail. Users' `[[agents]]` come first and so win. Patterns are
/// lowercase (fields are lowercased before matching) with ASCII word boundaries, so the
/// literal prefilter and the DFA do the work.
pub fn builtin() -> Vec<AgentRule> {
    let rule = |name: &str, ua: &[&str], session: &[&str]| AgentRule {
        name: name.into(),
        user_agent: ua.iter().map(|s| s.to_string()).collect(),
        session_name: session.iter().map(|s| s.to_string()).collect(),
        ..AgentRule::default()
    };
    vec![
        rule("claude-code", &[r"(?-u:\b)claude[-_ ]?code(?-u:\b)"], &[r"^claude[-_]?code"]),
        rule("aws-api-mcp-server", &[r"awslabs[/._-]?(aws-api-)?mcp", r"(?-u:\b)aws-api-mcp-server(?-u:\b)"], &[r"^aws-?mcp"]),
        rule("amazon-q-developer", &[r"(?-u:\b)(amazon-?q|q-developer|codewhisperer)(?-u:\b)"], &[r"^(amazon-?q|q-developer)"]),
        rule("github-copilot", &[r"(?-u:\b)copilot(?-u:\b)"], &[r"^copilot"]),
        rule("cursor", &[r"(?-u:\b)cursor/[0-9]"], &[r"^cursor[-_]"]),
        rule("openai-codex", &[r"(?-u:\b)codex[-_ ]?cli(?-u:\b)", r"(?-u:\b)openai[-_ ]codex(?-u:\b)"], &[r"^codex[-_]"]),
        rule("gemini-cli", &[r"(?-u:\b)gemini[-_ ]cli(?-u:\b)"], &[r"^gemini[-_]cli"]),
        rule("aider", &[r"(?-u:\b)aider/[0-9]"], &[]),
        rule("bedrock-agent", &[r"(?-u:\b)bedrock-agent(?-u:\b)"], &[r"^bedrock-agent"]),
    ]
}

/// One field's automata: a leftmost-first one that only answers "does any agent match" (the
/// common case is no, and that search is the cheapest), and an all-matches one that says which
/// patterns matched; and which agent each pattern belongs to.
struct Field {
    any: Option<Regex>,
    re: Option<Regex>,
    agent_of: Vec<usize>,
}

impl Field {
    fn new(what: &str, rules: &[AgentRule], pick: impl Fn(&AgentRule) -> &Vec<String>) -> Result<Field, String> {
        let mut patterns = Vec::new();
        let mut agent_of = Vec::new();
        for (i, r) in rules.iter().enumerate() {
            for p in pick(r) {
                patterns.push(p.as_str());
                agent_of.push(i);
            }
        }
        if patterns.is_empty() {
            return Ok(Field { any: None, re: None, agent_of });
        }
        // Every pattern that matches is wanted (the first agent wins), so match kind All.
        let re = Regex::builder().configure(meta::Config::new().match_kind(MatchKind::All)).build_many(&patterns).map_err(|e| {
            let bad = e.pattern().map_or_else(String::new, |p| format!(" `{}` of agent `{}`", patterns[p.as_usize()], rules[agent_of[p.as_usize()]].name));
            let why = e.syntax_error().map_or_else(|| e.to_string(), |s| s.to_string().replace('\n', " "));
            format!("agents[].{what}: bad regex{bad}: {why}")
        })?;
        let any = Regex::new_many(&patterns).map_err(|e| format!("agents[].{what}: {e}"))?;
        Ok(Field { any: Some(any), re: Some(re), agent_of })
    }

    /// The first agent (lowest index) whose pattern matches `hay` (lowercased into `buf`).
    fn first(&self, hay: Option<&str>, s: &mut Scratch) -> Option<usize> {
        let (any, re, hay) = (self.any.as_ref()?, self.re.as_ref()?, hay?);
        s.buf.clear();
        s.buf.push_str(hay);
        s.buf.make_ascii_lowercase();
        if !any.is_match(s.buf.as_str()) {
            return None;
        }
        let set = &mut s.set;
        set.clear();
        re.which_overlapping_matches(&Input::new(s.buf.as_str()), set);
        set.iter().map(|p| self.agent_of[p.as_usize()]).min()
    }
}

/// A literal for a regex: every character that is not alphanumeric escaped.
fn escape(s: &str) -> String {
    s.chars().flat_map(|c| if c.is_ascii_alphanumeric() { vec![c] } else { vec!['\\', c] }).collect()
}

/// Per-thread scratch space of a search: the matched patterns, the lowercased field.
pub struct Scratch {
    set: PatternSet,
    buf: String,
}

/// The compiled registry.
pub struct Registry {
    rules: Vec<AgentRule>,
    fields: [Field; 4],
    /// `^key=(?:value regex)$` per principal tag rule.
    tags: Field,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry").field("agents", &self.rules.iter().map(|r| &r.name).collect::<Vec<_>>()).finish()
    }
}

impl Registry {
    /// The user's agents, then (when `with_builtin`) the shipped ones. Fails on an agent
    /// without a name or without any pattern, and on a bad regex, naming it.
    pub fn new(user: &[AgentRule], with_builtin: bool) -> Result<Registry, String> {
        let mut rules: Vec<AgentRule> = user.to_vec();
        for (i, r) in rules.iter().enumerate() {
            if r.name.trim().is_empty() {
                return Err(format!("agents[{i}].name: empty; give the agent a name (it becomes actor.app_name)"));
            }
            if r.user_agent.is_empty() && r.role_arn.is_empty() && r.session_name.is_empty() && r.source_identity.is_empty() && r.principal_tags.is_empty() {
                return Err(format!("agents[{i}] (`{}`): no patterns; set at least one of user_agent, role_arn, session_name, source_identity, principal_tags", r.name));
            }
            r.scope.networks().map_err(|e| format!("agents[{i}] (`{}`).{e}", r.name))?;
        }
        if with_builtin {
            rules.extend(builtin());
        }
        let fields = [
            Field::new("user_agent", &rules, |r| &r.user_agent)?,
            Field::new("role_arn", &rules, |r| &r.role_arn)?,
            Field::new("session_name", &rules, |r| &r.session_name)?,
            Field::new("source_identity", &rules, |r| &r.source_identity)?,
        ];
        let tag_patterns: Vec<AgentRule> =
            rules.iter().map(|r| AgentRule { source_identity: r.principal_tags.iter().map(|(k, v)| format!("^{}=(?:{v})$", escape(&k.to_ascii_lowercase()))).collect(), ..r.clone() }).collect();
        let tags = Field::new("principal_tags", &tag_patterns, |r| &r.source_identity)?;
        Ok(Registry { rules, fields, tags })
    }

    /// The shipped agents only.
    pub fn builtin() -> Registry {
        Registry::new(&[], true).expect("the shipped agent patterns compile")
    }

    /// Scratch space for [`Registry::find`], one per thread.
    pub fn scratch(&self) -> Scratch {
        let len = self.fields.iter().chain([&self.tags]).filter_map(|f| f.re.as_ref()).map(|r| r.pattern_len()).max().unwrap_or(0);
        Scratch { set: PatternSet::new(len), buf: String::new() }
    }

    /// The agent a caller is, if any: the first declared agent any of whose patterns matches.
    /// Fields are matched lowercased (ASCII): write patterns in lowercase.
    pub fn find(&self, c: &Caller<'_>, set: &mut Scratch) -> Option<&AgentRule> {
        let hays = [c.user_agent, c.role_arn, c.session_name, c.source_identity];
        let by_tag = c.tags.iter().filter_map(|t| self.tags.first(Some(t), set)).min();
        let best = self.fields.iter().zip(hays).filter_map(|(f, h)| f.first(h, set)).chain(by_tag).min()?;
        self.rules.get(best)
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_declared_agent_wins_and_every_field_counts() {
        let mine = AgentRule {
            name: "deploy-bot".into(),
            uid: Some("bot-7".into()),
            user_agent: vec!["app/deploy-bot".into()],
            role_arn: vec![],
            session_name: vec!["^claude-code-ci$".into()],
            source_identity: vec![],
            ..AgentRule::default()
        };
        let r = Registry::new(&[mine], true).unwrap();
        let set = &mut r.scratch();
        let ua = "aws-cli/2.17.0 md/command#s3api.put-bucket-policy exec-env/claude-code";
        assert_eq!(r.find(&Caller { user_agent: Some(ua), ..Default::default() }, set).unwrap().name, "claude-code");
        // The user's agent is declared first: its session-name pattern wins over claude-code's.
        assert_eq!(r.find(&Caller { user_agent: Some(ua), session_name: Some("claude-code-ci"), ..Default::default() }, set).unwrap().name, "deploy-bot");
        assert_eq!(r.find(&Caller { user_agent: Some("Boto3/1.34 md/Botocore#1.34 app/deploy-bot"), ..Default::default() }, set).unwrap().uid.as_deref(), Some("bot-7"));
        assert!(r.find(&Caller { user_agent: Some("console.amazonaws.com"), session_name: Some("alice"), ..Default::default() }, set).is_none());
        // Session tags: key=value with the value a regex.
        let tagged = AgentRule {
            name: "tagged".into(),
            uid: None,
            user_agent: vec![],
            role_arn: vec![],
            session_name: vec![],
            source_identity: vec![],
            principal_tags: [("Agent".to_string(), "ops-.*".to_string())].into(),
            ..AgentRule::default()
        };
        let t = Registry::new(&[tagged], false).unwrap();
        let ts = &mut t.scratch();
        let tags = ["team=sec".to_string(), "Agent=Ops-Bot".to_string()];
        assert_eq!(t.find(&Caller { tags: &tags, ..Default::default() }, ts).unwrap().name, "tagged");
        assert!(t.find(&Caller { tags: &["agent=human".to_string()], ..Default::default() }, ts).is_none());
        // Fields are matched lowercased.
        assert_eq!(r.find(&Caller { user_agent: Some("Mozilla/5.0 Claude-Code/2.0"), ..Default::default() }, set).unwrap().name, "claude-code");
    }

    #[test]
    fn bad_rules_are_refused_with_the_key() {
        let bad = AgentRule { name: "x".into(), uid: None, user_agent: vec!["(".into()], role_arn: vec![], session_name: vec![], source_identity: vec![], ..AgentRule::default() };
        let e = Registry::new(&[bad], false).unwrap_err();
        assert!(e.starts_with("agents[].user_agent: bad regex `(` of agent `x`"), "{e}");
        let empty = AgentRule { name: "y".into(), uid: None, user_agent: vec![], role_arn: vec![], session_name: vec![], source_identity: vec![], ..AgentRule::default() };
        assert!(Registry::new(&[empty], false).unwrap_err().contains("no patterns"));
    }
}

/// `--agents FILE` of `ocelot normalize` and `ocelot detect`: the agents part of a TOML file
/// that may hold more (a whole `ocelot run` config: its other keys are ignored here).
#[derive(Debug, Clone, Deserialize)]
pub struct AgentsFile {
    #[serde(default)]
    pub agents: Vec<AgentRule>,
    #[serde(default = "yes")]
    pub builtin_agents: bool,
}

fn yes() -> bool {
    true
}

impl AgentsFile {
    /// Reads `[[agents]]` and `builtin_agents`, and checks they compile.
    pub fn load(path: &std::path::Path) -> Result<AgentsFile, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let file: AgentsFile = toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        file.registry().map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(file)
    }

    /// The compiled registry.
    pub fn registry(&self) -> Result<Registry, String> {
        Registry::new(&self.agents, self.builtin_agents)
    }
}
