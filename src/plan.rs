//! Where each source folder goes on the destination.
//!
//! Names are handled decoded (UTF-8); only the final names are encoded to modified UTF-7.

use std::collections::HashMap;

use crate::utf7;

/// What the planner needs to know about one side.
#[derive(Debug, Clone, Default)]
pub struct Namespace {
    /// Personal namespace prefix, decoded (e.g. `INBOX.` on Courier and Cyrus).
    pub prefix: String,
    /// Hierarchy separator; `None` for a flat server.
    pub separator: Option<char>,
}

/// A source folder to plan.
#[derive(Debug, Clone)]
pub struct SourceFolder {
    pub wire: String,
    pub special_use: Option<String>,
}

/// A destination folder that exists already.
#[derive(Debug, Clone)]
pub struct ExistingFolder {
    pub wire: String,
    pub special_use: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    pub source_wire: String,
    /// Decoded source name, as shown to people.
    pub source: String,
    pub dest_wire: String,
    pub dest: String,
    pub special_use: Option<String>,
    /// The destination folder is there already.
    pub exists: bool,
}

#[derive(Debug, Default)]
pub struct Plan {
    pub folders: Vec<Mapping>,
    pub warnings: Vec<(String, String)>,
}

/// Replaces the destination's separator when it appears as a plain character in a name.
fn substitute_for(sep: char) -> char {
    if sep == '_' { '-' } else { '_' }
}

/// How a destination name was chosen; lower ranks claim a contested name first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Rank {
    /// The source's INBOX.
    Inbox,
    /// Renamed by `--folder-map`: the user asked for this name, it is never changed.
    Mapped,
    /// The source name, only its separators translated.
    Natural,
    /// Changed by btsx: a separator character substituted, or a special-use folder mapped
    /// onto the destination's own.
    Altered,
}

/// One source folder's wish.
struct Wish {
    decoded: String,
    /// The source path, split at the source separator: subfolders follow a renamed parent.
    path: Vec<String>,
    dest: String,
    /// Where it goes when `dest` is taken before trying a numbered name.
    fallback: Option<String>,
    rank: Rank,
}

/// Names that are one folder on a server: INBOX is case-insensitive.
fn claim_key(name: &str) -> String {
    if name.eq_ignore_ascii_case("INBOX") {
        "INBOX".to_string()
    } else {
        name.to_string()
    }
}

/// Map every source folder to its destination name. The plan is injective: two source
/// folders never land in one destination folder. When names would meet, the folder whose
/// name btsx changed anyway gets another (a warning says which); when one of them was named
/// by `--folder-map`, the plan is refused with an error naming both.
///
/// `folder_map` (decoded OLD=NEW pairs, NEW written with the destination separator) is
/// applied after separator translation.
pub fn plan(
    sources: &[SourceFolder],
    src_ns: &Namespace,
    dst_ns: &Namespace,
    existing: &[ExistingFolder],
    folder_map: &[(String, String)],
) -> Result<Plan, String> {
    let mut out = Plan::default();
    let dst_sep = dst_ns.separator;
    // Special-use folders the destination already has: attribute → decoded full name.
    let mut dst_special: HashMap<String, String> = HashMap::new();
    for e in existing {
        if let Some(su) = &e.special_use {
            dst_special
                .entry(su.to_ascii_lowercase())
                .or_insert_with(|| utf7::decode_lossy(&e.wire));
        }
    }
    let existing_names: Vec<String> = existing.iter().map(|e| e.wire.clone()).collect();
    let mut used = vec![false; folder_map.len()];

    // First pass: translate names component by component.
    let mut translated: Vec<(Vec<String>, Vec<String>, bool, String)> = Vec::new();
    for s in sources {
        let decoded = utf7::decode_lossy(&s.wire);
        if decoded.eq_ignore_ascii_case("INBOX") {
            translated.push((vec!["INBOX".into()], vec!["INBOX".into()], false, decoded));
            continue;
        }
        let rel = decoded
            .strip_prefix(src_ns.prefix.as_str())
            .filter(|r| !src_ns.prefix.is_empty() && !r.is_empty())
            .unwrap_or(&decoded);
        let parts: Vec<&str> = match src_ns.separator {
            Some(sep) => rel.split(sep).collect(),
            None => vec![rel],
        };
        let mut comps = Vec::new();
        let mut altered = false;
        for p in &parts {
            match dst_sep {
                Some(d) if p.contains(d) => {
                    let fixed = p.replace(d, &substitute_for(d).to_string());
                    out.warnings.push((
                        decoded.clone(),
                        format!(
                            "folder '{decoded}': '{d}' is the destination's hierarchy separator, so '{p}' becomes '{fixed}' (use --folder-map to choose another name)"
                        ),
                    ));
                    comps.push(fixed);
                    altered = true;
                }
                _ => comps.push(p.to_string()),
            }
        }
        // The full source name, so folders inside and outside the namespace never look alike.
        let path = match src_ns.separator {
            Some(sep) => decoded.split(sep).map(str::to_string).collect(),
            None => vec![decoded.clone()],
        };
        translated.push((comps, path, altered, decoded));
    }

    // Special-use roots: source path → destination full name.
    let mut roots: Vec<(Vec<String>, String)> = Vec::new();
    for (s, (comps, ..)) in sources.iter().zip(&translated) {
        if let Some(su) = &s.special_use
            && let Some(d) = dst_special.get(&su.to_ascii_lowercase())
            && !roots.iter().any(|(_, name)| name == d)
        {
            roots.push((comps.clone(), d.clone()));
        }
    }

    // A destination without a hierarchy (NIL delimiter) takes the source's separator as a
    // plain character: "Archive/2020" stays "Archive/2020", never "Archive2020".
    let joiner = dst_sep
        .or(src_ns.separator)
        .map(String::from)
        .unwrap_or_default();
    let join = |comps: &[String]| -> String { comps.join(&joiner) };

    let mut wishes = Vec::new();
    for (comps, path, altered, decoded) in translated {
        let wish =
            if comps.len() == 1 && comps[0] == "INBOX" && decoded.eq_ignore_ascii_case("INBOX") {
                Wish {
                    decoded,
                    path,
                    dest: "INBOX".into(),
                    fallback: None,
                    rank: Rank::Inbox,
                }
            } else {
                let joined = join(&comps);
                let plain = format!("{}{}", dst_ns.prefix, joined);
                // OLD may be written as the destination will see it ("Archive.2020") or as
                // the source names it ("Archive/2020").
                let mut mapped = apply_folder_map(&joined, folder_map, dst_sep, &mut used);
                if mapped == joined {
                    let src_name = match src_ns.separator {
                        Some(sep) => comps.join(&sep.to_string()),
                        None => joined.clone(),
                    };
                    let alt = apply_folder_map(&src_name, folder_map, src_ns.separator, &mut used);
                    if alt != src_name {
                        // NEW is written with the destination's separator.
                        mapped = alt;
                    }
                }
                if mapped != joined {
                    let dest = if mapped.eq_ignore_ascii_case("INBOX") {
                        "INBOX".to_string()
                    } else {
                        format!("{}{}", dst_ns.prefix, mapped)
                    };
                    Wish {
                        decoded,
                        path,
                        dest,
                        fallback: None,
                        rank: Rank::Mapped,
                    }
                } else if let Some((root, name)) = roots
                    .iter()
                    .filter(|(root, _)| comps.starts_with(root))
                    .max_by_key(|(root, _)| root.len())
                {
                    // The folder itself or a child of a special-use folder.
                    let rest = &comps[root.len()..];
                    let dest = if rest.is_empty() {
                        name.clone()
                    } else {
                        format!("{name}{joiner}{}", join(rest))
                    };
                    Wish {
                        decoded,
                        path,
                        dest,
                        fallback: Some(plain),
                        rank: Rank::Altered,
                    }
                } else {
                    Wish {
                        decoded,
                        path,
                        dest: plain,
                        fallback: None,
                        rank: if altered {
                            Rank::Altered
                        } else {
                            Rank::Natural
                        },
                    }
                }
            };
        wishes.push(wish);
    }

    let dests = resolve(&wishes, &joiner, &mut out.warnings)?;
    for ((s, w), dest) in sources.iter().zip(wishes).zip(dests) {
        let dest_wire = utf7::encode(&dest);
        let exists = existing_names
            .iter()
            .any(|e| *e == dest_wire || (dest == "INBOX" && e.eq_ignore_ascii_case("INBOX")));
        out.folders.push(Mapping {
            source_wire: s.wire.clone(),
            source: w.decoded,
            dest_wire,
            dest,
            special_use: s.special_use.clone(),
            exists,
        });
    }
    for ((old, new), used) in folder_map.iter().zip(&used) {
        if !used {
            out.warnings.push((
                String::new(),
                format!("--folder-map '{old}={new}' matched no folder; nothing was renamed by it"),
            ));
        }
    }
    Ok(out)
}

/// Give every wish a distinct destination name, in order of rank (then parents before
/// children). A folder whose name is taken moves to its fallback or a numbered name, and
/// its subfolders follow it; a clash involving a `--folder-map` name is refused.
fn resolve(
    wishes: &[Wish],
    sep: &str,
    warnings: &mut Vec<(String, String)>,
) -> Result<Vec<String>, String> {
    let mut order: Vec<usize> = (0..wishes.len()).collect();
    order.sort_by_key(|&i| (wishes[i].rank, wishes[i].path.len(), i));
    let mut taken: HashMap<String, usize> = HashMap::new();
    let mut dests = vec![String::new(); wishes.len()];
    // (source path, name wished, name given) of every folder that moved.
    let mut moved: Vec<(&[String], &str, String)> = Vec::new();
    for i in order {
        let w = &wishes[i];
        let mut want = w.dest.clone();
        let mut fallback = w.fallback.clone();
        // Below a parent that moved: follow it.
        if let Some((_, old, new)) = moved
            .iter()
            .filter(|(p, ..)| p.len() < w.path.len() && w.path.starts_with(p))
            .max_by_key(|(p, ..)| p.len())
        {
            let follow = |name: &str| {
                name.strip_prefix(old)
                    .filter(|rest| !sep.is_empty() && rest.starts_with(sep))
                    .map(|rest| format!("{new}{rest}"))
            };
            if let Some(f) = follow(&want) {
                want = f;
            }
            fallback = fallback.map(|fb| follow(&fb).unwrap_or(fb));
        }
        if let Some(&j) = taken.get(&claim_key(&want)) {
            let other = &wishes[j];
            if w.rank == Rank::Mapped || other.rank == Rank::Mapped {
                return Err(format!(
                    "source folders '{}' and '{}' would both land in destination folder '{want}'; give one of them another name with --folder-map, or leave one out with --exclude",
                    other.decoded, w.decoded
                ));
            }
            let first_free = fallback
                .into_iter()
                .chain((2u32..).map(|n| format!("{want}-{n}")))
                .find(|c| !taken.contains_key(&claim_key(c)))
                .unwrap_or_default();
            warnings.push((
                w.decoded.clone(),
                format!(
                    "folder '{}' would land in destination folder '{want}' together with '{}', so it goes to '{first_free}' (use --folder-map to choose another name)",
                    w.decoded, other.decoded
                ),
            ));
            want = first_free;
        }
        if want != w.dest {
            moved.push((&w.path, &w.dest, want.clone()));
        }
        taken.insert(claim_key(&want), i);
        dests[i] = want;
    }
    Ok(dests)
}

/// `OLD=NEW`: exact match renames the folder; a match on a parent renames the subtree.
fn apply_folder_map(
    name: &str,
    map: &[(String, String)],
    sep: Option<char>,
    used: &mut [bool],
) -> String {
    for (i, (old, new)) in map.iter().enumerate() {
        if name == old {
            used[i] = true;
            return new.clone();
        }
        if let Some(sep) = sep
            && let Some(rest) = name.strip_prefix(old.as_str())
            && rest.starts_with(sep)
        {
            used[i] = true;
            return format!("{new}{rest}");
        }
    }
    name.to_string()
}

/// Ancestors of `dest` (decoded) that must exist first, shallowest first.
pub fn ancestors(dest: &str, sep: Option<char>, prefix: &str) -> Vec<String> {
    let Some(sep) = sep else { return Vec::new() };
    let mut out = Vec::new();
    for (i, c) in dest.char_indices() {
        if c == sep && i > 0 {
            let parent = &dest[..i];
            // The namespace prefix itself ("INBOX" of "INBOX.") is not ours to create.
            if !prefix.is_empty() && prefix.trim_end_matches(sep) == parent {
                continue;
            }
            out.push(parent.to_string());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src(wire: &str) -> SourceFolder {
        SourceFolder {
            wire: wire.into(),
            special_use: None,
        }
    }

    fn ns(prefix: &str, sep: char) -> Namespace {
        Namespace {
            prefix: prefix.into(),
            separator: Some(sep),
        }
    }

    #[test]
    fn separator_translation_and_inbox() {
        let p = plan(
            &[src("INBOX"), src("Archive/2020/Q1"), src("Entw&APw-rfe")],
            &ns("", '/'),
            &ns("", '.'),
            &[],
            &[],
        )
        .expect("plan");
        let d: Vec<_> = p.folders.iter().map(|m| m.dest.as_str()).collect();
        assert_eq!(d, ["INBOX", "Archive.2020.Q1", "Entwürfe"]);
        assert_eq!(p.folders[2].dest_wire, "Entw&APw-rfe");
    }

    #[test]
    fn plain_separator_character_is_not_a_hierarchy() {
        let p = plan(&[src("a.b")], &ns("", '/'), &ns("", '.'), &[], &[]).expect("plan");
        assert_eq!(p.folders[0].dest, "a_b");
        assert_eq!(p.warnings.len(), 1);
        assert!(p.warnings[0].1.contains("a_b"));
    }

    #[test]
    fn namespace_prefixes() {
        let p = plan(
            &[src("INBOX"), src("INBOX.Sent"), src("INBOX.Work.Q1")],
            &ns("INBOX.", '.'),
            &ns("", '/'),
            &[],
            &[],
        )
        .expect("plan");
        let d: Vec<_> = p.folders.iter().map(|m| m.dest.as_str()).collect();
        assert_eq!(d, ["INBOX", "Sent", "Work/Q1"]);
        let p = plan(
            &[src("INBOX"), src("Work/Q1")],
            &ns("", '/'),
            &ns("INBOX.", '.'),
            &[],
            &[],
        )
        .expect("plan");
        let d: Vec<_> = p.folders.iter().map(|m| m.dest.as_str()).collect();
        assert_eq!(d, ["INBOX", "INBOX.Work.Q1"]);
    }

    #[test]
    fn special_use_maps_onto_destination_folder_and_children() {
        let sources = [
            SourceFolder {
                wire: "Sent Messages".into(),
                special_use: Some("\\Sent".into()),
            },
            src("Sent Messages/2019"),
        ];
        let existing = [ExistingFolder {
            wire: "Sent".into(),
            special_use: Some("\\Sent".into()),
        }];
        let p = plan(&sources, &ns("", '/'), &ns("", '.'), &existing, &[]).expect("plan");
        assert_eq!(p.folders[0].dest, "Sent");
        assert!(p.folders[0].exists);
        assert_eq!(p.folders[1].dest, "Sent.2019");
    }

    #[test]
    fn folder_map_renames_folder_and_subtree() {
        let p = plan(
            &[src("Old"), src("Old/x")],
            &ns("", '/'),
            &ns("", '.'),
            &[],
            &[("Old".into(), "New".into())],
        )
        .expect("plan");
        let d: Vec<_> = p.folders.iter().map(|m| m.dest.as_str()).collect();
        assert_eq!(d, ["New", "New.x"]);
    }

    #[test]
    fn folder_map_accepts_source_names_and_warns_when_unused() {
        let p = plan(
            &[src("Archive/2020"), src("Other")],
            &ns("", '/'),
            &ns("", '.'),
            &[],
            &[
                ("Archive/2020".into(), "Old.2020".into()),
                ("Nope".into(), "X".into()),
            ],
        )
        .expect("plan");
        assert_eq!(p.folders[0].dest, "Old.2020");
        assert_eq!(p.warnings.len(), 1);
        assert!(p.warnings[0].1.contains("Nope=X"));
    }

    fn dests(p: &Plan) -> Vec<&str> {
        p.folders.iter().map(|m| m.dest.as_str()).collect()
    }

    #[test]
    fn nil_destination_delimiter_never_joins_path_parts() {
        let flat = Namespace {
            prefix: String::new(),
            separator: None,
        };
        let p = plan(
            &[src("Archive/2020"), src("Archive2020"), src("Archive")],
            &ns("", '/'),
            &flat,
            &[],
            &[],
        )
        .expect("plan");
        assert_eq!(dests(&p), ["Archive/2020", "Archive2020", "Archive"]);
        assert!(p.warnings.is_empty(), "{:?}", p.warnings);
    }

    #[test]
    fn courier_inbox_inbox_does_not_become_inbox() {
        // Courier → Courier: the faithful name.
        let p = plan(
            &[src("INBOX"), src("INBOX.INBOX")],
            &ns("INBOX.", '.'),
            &ns("INBOX.", '.'),
            &[],
            &[],
        )
        .expect("plan");
        assert_eq!(dests(&p), ["INBOX", "INBOX.INBOX"]);
        // Courier → Dovecot: "INBOX" is INBOX itself, so another name, with a warning.
        let p = plan(
            &[src("INBOX.INBOX"), src("INBOX")],
            &ns("INBOX.", '.'),
            &ns("", '/'),
            &[],
            &[],
        )
        .expect("plan");
        assert_eq!(dests(&p), ["INBOX-2", "INBOX"]);
        assert!(
            p.warnings
                .iter()
                .any(|(f, w)| f == "INBOX.INBOX" && w.contains("INBOX-2"))
        );
    }

    #[test]
    fn a_substituted_name_never_takes_a_real_folder_and_children_follow() {
        let p = plan(
            &[src("a.b"), src("a.b/x"), src("a_b"), src("a_b/x")],
            &ns("", '/'),
            &ns("", '.'),
            &[],
            &[],
        )
        .expect("plan");
        assert_eq!(dests(&p), ["a_b-2", "a_b-2.x", "a_b", "a_b.x"]);
        let w: Vec<_> = p.warnings.iter().map(|(_, w)| w.as_str()).collect();
        assert!(
            w.iter()
                .any(|w| w.contains("'a.b'") && w.contains("'a_b'") && w.contains("a_b-2")),
            "{w:?}"
        );
    }

    #[test]
    fn special_use_folder_keeps_its_own_name_when_the_target_is_a_real_source_folder() {
        let sources = [
            SourceFolder {
                wire: "Sent Messages".into(),
                special_use: Some("\\Sent".into()),
            },
            src("Sent Messages/2019"),
            src("Sent"),
        ];
        let existing = [ExistingFolder {
            wire: "Sent".into(),
            special_use: Some("\\Sent".into()),
        }];
        let p = plan(&sources, &ns("", '/'), &ns("", '.'), &existing, &[]).expect("plan");
        assert_eq!(dests(&p), ["Sent Messages", "Sent Messages.2019", "Sent"]);
    }

    #[test]
    fn folder_map_onto_another_source_folder_is_refused_naming_both() {
        let err = plan(
            &[src("Old"), src("New")],
            &ns("", '/'),
            &ns("", '.'),
            &[],
            &[("Old".into(), "New".into())],
        )
        .expect_err("two folders into one");
        assert!(err.contains("'Old'") && err.contains("'New'"), "{err}");
        // Onto a folder only the destination has: that is what --folder-map is for.
        let p = plan(
            &[src("Old")],
            &ns("", '/'),
            &ns("", '.'),
            &[ExistingFolder {
                wire: "New".into(),
                special_use: None,
            }],
            &[("Old".into(), "New".into())],
        )
        .expect("plan");
        assert_eq!(dests(&p), ["New"]);
        assert!(p.folders[0].exists);
    }

    #[test]
    fn ancestors_skip_namespace_prefix() {
        assert_eq!(ancestors("a.b.c", Some('.'), ""), ["a", "a.b"]);
        assert_eq!(ancestors("INBOX.a.b", Some('.'), "INBOX."), ["INBOX.a"]);
        assert!(ancestors("a", Some('.'), "").is_empty());
    }
}

#[cfg(test)]
mod fuzz {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any folder names, any separators: no panic, one mapping per folder, every
        /// destination name encodes to printable ASCII and decodes back.
        #[test]
        fn planning_never_panics(
            names in proptest::collection::vec("[a-zA-Z0-9 ./&_\u{e0}-\u{ff}\u{4e00}-\u{4e10}-]{0,16}", 0..12),
            src_sep in prop_oneof![Just('/'), Just('.'), Just('\\')],
            dst_sep in prop_oneof![Just('/'), Just('.'), Just('\\')],
            prefix in prop_oneof![Just(String::new()), Just("INBOX.".to_string())],
        ) {
            let sources: Vec<SourceFolder> = names
                .iter()
                .map(|n| SourceFolder { wire: utf7::encode(n), special_use: None })
                .collect();
            let p = plan(
                &sources,
                &Namespace { prefix: String::new(), separator: Some(src_sep) },
                &Namespace { prefix, separator: Some(dst_sep) },
                &[],
                &[],
            ).expect("plan");
            prop_assert_eq!(p.folders.len(), sources.len());
            let mut seen = std::collections::HashSet::new();
            for m in &p.folders {
                prop_assert!(m.dest_wire.bytes().all(|b| (0x20..0x7f).contains(&b)));
                prop_assert_eq!(utf7::decode(&m.dest_wire).ok(), Some(m.dest.clone()));
                prop_assert!(seen.insert(claim_key(&m.dest)), "{:?} twice", m.dest);
            }
        }

        /// Any set of distinct source folders, any separators (NIL too), prefixes, special
        /// uses and folder maps: two source folders never share a destination folder (INBOX
        /// compared case-insensitively); a plan is refused only for a --folder-map clash.
        #[test]
        fn the_plan_is_injective(
            names in proptest::collection::btree_set("(INBOX|inbox|[ab._/-]{1,2}|Sent|INBOX[./][ab_]{1,2}|[ab][./_][ab])(-2)?", 0..14),
            src_sep in prop_oneof![Just(Some('/')), Just(Some('.')), Just(None)],
            dst_sep in prop_oneof![Just(Some('/')), Just(Some('.')), Just(Some('_')), Just(None)],
            src_prefix in prop_oneof![Just(String::new()), Just("INBOX.".to_string())],
            dst_prefix in prop_oneof![Just(String::new()), Just("INBOX.".to_string())],
            sent in proptest::option::of(0usize..14),
            map in proptest::collection::vec(("[ab._/-]{1,2}", "[ab._-]{1,2}"), 0..3),
        ) {
            let sources: Vec<SourceFolder> = names
                .iter()
                .enumerate()
                .map(|(i, n)| SourceFolder {
                    wire: utf7::encode(n),
                    special_use: (sent == Some(i)).then(|| "\\Sent".to_string()),
                })
                .collect();
            let existing = [ExistingFolder { wire: "Sent".into(), special_use: Some("\\Sent".into()) }];
            let src_ns = Namespace { prefix: src_prefix, separator: src_sep };
            let dst_ns = Namespace { prefix: dst_prefix, separator: dst_sep };
            match plan(&sources, &src_ns, &dst_ns, &existing, &map) {
                Ok(p) => {
                    prop_assert_eq!(p.folders.len(), sources.len());
                    let mut seen = std::collections::HashMap::new();
                    for m in &p.folders {
                        if let Some(first) = seen.insert(claim_key(&m.dest), m.source.clone()) {
                            prop_assert!(false, "{:?} and {:?} both go to {:?}", first, m.source, m.dest);
                        }
                        prop_assert_eq!(utf7::decode(&m.dest_wire).ok(), Some(m.dest.clone()));
                    }
                }
                Err(e) => prop_assert!(!map.is_empty(), "refused without --folder-map: {}", e),
            }
        }
    }
}
