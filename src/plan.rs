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

/// Map every source folder to its destination name.
///
/// `folder_map` (decoded OLD=NEW pairs, NEW written with the destination separator) is
/// applied after separator translation.
pub fn plan(
    sources: &[SourceFolder],
    src_ns: &Namespace,
    dst_ns: &Namespace,
    existing: &[ExistingFolder],
    folder_map: &[(String, String)],
) -> Plan {
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
    let mut translated: Vec<(Vec<String>, String)> = Vec::new();
    for s in sources {
        let decoded = utf7::decode_lossy(&s.wire);
        if decoded.eq_ignore_ascii_case("INBOX") {
            translated.push((vec!["INBOX".to_string()], decoded));
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
        for p in parts {
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
                }
                _ => comps.push(p.to_string()),
            }
        }
        translated.push((comps, decoded));
    }

    // Special-use roots: source path → destination full name.
    let mut roots: Vec<(Vec<String>, String)> = Vec::new();
    for (s, (comps, _)) in sources.iter().zip(&translated) {
        if let Some(su) = &s.special_use
            && let Some(d) = dst_special.get(&su.to_ascii_lowercase())
            && !roots.iter().any(|(_, name)| name == d)
        {
            roots.push((comps.clone(), d.clone()));
        }
    }

    let join = |comps: &[String]| -> String {
        match dst_sep {
            Some(d) => comps.join(&d.to_string()),
            None => comps.join(""),
        }
    };

    for (s, (comps, decoded)) in sources.iter().zip(translated) {
        let dest =
            if comps.len() == 1 && comps[0] == "INBOX" && decoded.eq_ignore_ascii_case("INBOX") {
                "INBOX".to_string()
            } else if let Some((root, name)) = roots
                .iter()
                .filter(|(root, _)| comps.starts_with(root))
                .max_by_key(|(root, _)| root.len())
            {
                // The folder itself or a child of a special-use folder.
                let rest = &comps[root.len()..];
                if rest.is_empty() {
                    name.clone()
                } else {
                    let sep = dst_sep.map(String::from).unwrap_or_default();
                    format!("{name}{sep}{}", join(rest))
                }
            } else {
                let joined = join(&comps);
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
                if mapped.eq_ignore_ascii_case("INBOX") {
                    "INBOX".to_string()
                } else {
                    format!("{}{}", dst_ns.prefix, mapped)
                }
            };
        let dest_wire = utf7::encode(&dest);
        let exists = existing_names
            .iter()
            .any(|e| *e == dest_wire || (dest == "INBOX" && e.eq_ignore_ascii_case("INBOX")));
        out.folders.push(Mapping {
            source_wire: s.wire.clone(),
            source: decoded,
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
    out
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
        );
        let d: Vec<_> = p.folders.iter().map(|m| m.dest.as_str()).collect();
        assert_eq!(d, ["INBOX", "Archive.2020.Q1", "Entwürfe"]);
        assert_eq!(p.folders[2].dest_wire, "Entw&APw-rfe");
    }

    #[test]
    fn plain_separator_character_is_not_a_hierarchy() {
        let p = plan(&[src("a.b")], &ns("", '/'), &ns("", '.'), &[], &[]);
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
        );
        let d: Vec<_> = p.folders.iter().map(|m| m.dest.as_str()).collect();
        assert_eq!(d, ["INBOX", "Sent", "Work/Q1"]);
        let p = plan(
            &[src("INBOX"), src("Work/Q1")],
            &ns("", '/'),
            &ns("INBOX.", '.'),
            &[],
            &[],
        );
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
        let p = plan(&sources, &ns("", '/'), &ns("", '.'), &existing, &[]);
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
        );
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
        );
        assert_eq!(p.folders[0].dest, "Old.2020");
        assert_eq!(p.warnings.len(), 1);
        assert!(p.warnings[0].1.contains("Nope=X"));
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
            );
            prop_assert_eq!(p.folders.len(), sources.len());
            for m in &p.folders {
                prop_assert!(m.dest_wire.bytes().all(|b| (0x20..0x7f).contains(&b)));
                prop_assert_eq!(utf7::decode(&m.dest_wire).ok(), Some(m.dest.clone()));
            }
        }
    }
}
