//! Instance selection: tag patterns with `*` and `?`, the union of ids and tag matches, each
//! instance once, gone instances skipped, in a fixed order.

use crate::model::{Instance, Tags};
use glob::{MatchOptions, Pattern};

/// `-t NAME VALUE` or `--snap-filter TAG VALUE`: the value may hold `*` and `?`, as EC2 filters do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagPattern {
    pub key: String,
    pub value: String,
    /// `value` compiled once: retention matches it against every snapshot listed.
    compiled: Pattern,
}

const OPTIONS: MatchOptions = MatchOptions {
    case_sensitive: true,
    require_literal_separator: false,
    require_literal_leading_dot: false,
};

impl TagPattern {
    pub fn new(key: &str, value: &str) -> Self {
        TagPattern {
            key: key.to_string(),
            value: value.to_string(),
            compiled: compile(value),
        }
    }

    pub fn matches(&self, tags: &Tags) -> bool {
        tags.get(&self.key)
            .is_some_and(|v| self.compiled.matches_with(v, OPTIONS))
    }
}

/// EC2 wildcards are only `*` and `?`; `[` and `]` are literal there, so they are escaped for glob,
/// and runs of `*` become one (glob refuses `**` inside a component; the meaning is the same).
fn compile(value: &str) -> Pattern {
    let mut escaped = String::with_capacity(value.len());
    let mut previous = None;
    for c in value.chars() {
        match c {
            '[' => escaped.push_str("[[]"),
            ']' => escaped.push_str("[]]"),
            '*' if previous == Some('*') => {}
            c => escaped.push(c),
        }
        previous = Some(c);
    }
    Pattern::new(&escaped).expect("only * and ? are special once [ and ] are escaped")
}

/// All patterns must match (the same key twice means both patterns must match its value).
pub fn matches_all(patterns: &[TagPattern], tags: &Tags) -> bool {
    patterns.iter().all(|p| p.matches(tags))
}

/// The filters to send to EC2 for narrowing: one value per key (the first pattern seen). The
/// exact rule, all patterns, is applied again on the answer with `matches_all`.
pub fn server_filters(patterns: &[TagPattern]) -> Vec<(String, String)> {
    let mut seen = std::collections::BTreeSet::new();
    patterns
        .iter()
        .filter(|p| seen.insert(p.key.clone()))
        .map(|p| (format!("tag:{}", p.key), p.value.clone()))
        .collect()
}

/// What the selection found, and the instances skipped because they are gone.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Selected {
    pub instances: Vec<Instance>,
    pub skipped: Vec<(String, String)>,
}

/// Merges the instances found by id (`-i`, or every instance for `-i all`) with those EC2 returned
/// for the tag filters, which must match every pattern: each once, terminated and shutting-down ones
/// skipped, ordered by instance id so that `-l N` always takes the same ones.
pub fn finalize(
    by_ids: Vec<Instance>,
    by_tags: Vec<Instance>,
    patterns: &[TagPattern],
) -> Selected {
    let mut by_id = std::collections::BTreeMap::new();
    let tag_matches = by_tags
        .into_iter()
        .filter(|i| matches_all(patterns, &i.tags));
    for inst in by_ids.into_iter().chain(tag_matches) {
        by_id.entry(inst.id.clone()).or_insert(inst);
    }
    let mut out = Selected::default();
    for (_, inst) in by_id {
        if inst.is_gone() {
            out.skipped.push((inst.id.clone(), inst.state.clone()));
        } else {
            out.instances.push(inst);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(pairs: &[(&str, &str)]) -> Tags {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn wildcard_matching() {
        // (key, pattern, instance tags, expected)
        type Case<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)], bool);
        let cases: &[Case] = &[
            ("Name", "front*", &[("Name", "front1")], true),
            ("Name", "front*", &[("Name", "front")], true),
            ("Name", "front*", &[("Name", "back1")], false),
            ("Name", "front*", &[("name", "front1")], false),
            ("Name", "front*", &[("Name", "Front1")], false),
            ("Name", "fr?nt", &[("Name", "front")], true),
            ("Name", "fr?nt", &[("Name", "froont")], false),
            ("Name", "*", &[("Name", "")], true),
            ("Name", "*", &[], false),
            ("Name", "a[1]", &[("Name", "a[1]")], true),
            ("Name", "a[1]", &[("Name", "a1")], false),
            ("env", "prod", &[("env", "prod")], true),
            ("env", "prod", &[("env", "production")], false),
            ("path", "/a/*", &[("path", "/a/b/c")], true),
            ("Name", "a**b", &[("Name", "axyb")], true),
            ("Name", "**", &[("Name", "x")], true),
            ("Name", "a**?", &[("Name", "a")], false),
        ];
        for (k, v, t, want) in cases {
            assert_eq!(
                TagPattern::new(k, v).matches(&tags(t)),
                *want,
                "{k}={v} on {t:?}"
            );
        }
    }

    #[test]
    fn all_patterns_must_match_even_on_the_same_key() {
        let p = vec![TagPattern::new("K", "a*"), TagPattern::new("K", "*b")];
        assert!(matches_all(&p, &tags(&[("K", "ab")])));
        assert!(!matches_all(&p, &tags(&[("K", "ac")])));
        assert!(!matches_all(&p, &tags(&[("K", "cb")])));
        assert!(matches_all(&[], &tags(&[])));
        assert_eq!(
            server_filters(&p),
            vec![("tag:K".to_string(), "a*".to_string())]
        );
    }

    fn inst(id: &str, state: &str) -> Instance {
        Instance {
            id: id.into(),
            state: state.into(),
            tags: Tags::new(),
            root_device: None,
            disks: vec![],
        }
    }

    #[test]
    fn tag_results_are_checked_against_every_pattern() {
        let mut a = inst("i-a", "running");
        a.tags = tags(&[("K", "ab")]);
        let mut b = inst("i-b", "running");
        b.tags = tags(&[("K", "ac")]);
        let p = vec![TagPattern::new("K", "a*"), TagPattern::new("K", "*b")];
        let s = finalize(vec![inst("i-z", "running")], vec![a, b], &p);
        let ids: Vec<_> = s.instances.iter().map(|i| i.id.as_str()).collect();
        assert_eq!(ids, ["i-a", "i-z"]);
    }

    #[test]
    fn union_dedup_order_and_gone_skipped() {
        let found = vec![
            inst("i-c", "running"),
            inst("i-a", "stopped"),
            inst("i-c", "running"),
            inst("i-t", "terminated"),
            inst("i-b", "running"),
            inst("i-s", "shutting-down"),
        ];
        let s = finalize(found, vec![], &[]);
        let ids: Vec<_> = s.instances.iter().map(|i| i.id.as_str()).collect();
        assert_eq!(ids, ["i-a", "i-b", "i-c"]);
        assert_eq!(
            s.skipped,
            vec![
                ("i-s".to_string(), "shutting-down".to_string()),
                ("i-t".to_string(), "terminated".to_string())
            ]
        );
    }
}
