//! Instance selection: the union of ids and tag matches, each instance once, gone instances
//! skipped, in a fixed order; and which ids asked for were not found.

use crate::model::{matches_all, Instance, TagPattern};

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
            out.skipped.push((inst.id.clone(), inst.state.to_string()));
        } else {
            out.instances.push(inst);
        }
    }
    out
}

/// The ids asked for with `-i` that EC2 did not return, sorted and each once.
pub fn missing_ids(asked: &[String], found: &[Instance]) -> Vec<String> {
    let found: std::collections::HashSet<&str> = found.iter().map(|i| i.id.as_str()).collect();
    let mut missing: Vec<String> = asked
        .iter()
        .filter(|id| !found.contains(id.as_str()))
        .cloned()
        .collect();
    missing.sort();
    missing.dedup();
    missing
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{tags, InstanceState, Tags};

    fn inst(id: &str, state: &str) -> Instance {
        Instance {
            id: id.into(),
            state: InstanceState::from_name(state),
            tags: Tags::new(),
            root_device: None,
            machine: Default::default(),
            disks: vec![],
        }
    }

    #[test]
    fn tag_results_are_checked_against_every_pattern() {
        let mut a = inst("i-a", "running");
        a.tags = tags(&[("K", "ab")]);
        let mut b = inst("i-b", "running");
        b.tags = tags(&[("K", "ac")]);
        let p = vec![
            TagPattern::new("K", "a*").unwrap(),
            TagPattern::new("K", "*b").unwrap(),
        ];
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

    #[test]
    fn ids_not_found() {
        let found = vec![inst("i-b", "running"), inst("i-t", "terminated")];
        let ids = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        // (asked, expected missing)
        let cases: &[(&[&str], &[&str])] = &[
            (&[], &[]),
            (&["i-b"], &[]),
            (&["i-t"], &[]),
            (&["i-z", "i-a", "i-b"], &["i-a", "i-z"]),
            (&["i-a", "i-a"], &["i-a"]),
        ];
        for (asked, want) in cases {
            assert_eq!(missing_ids(&ids(asked), &found), ids(want), "{asked:?}");
        }
    }
}
