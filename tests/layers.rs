//! The crate graph the layout promises, checked from the manifests: the services are
//! peers (none depends on another, not even for its tests), and the pure core and the
//! kit stay below them. A test that needs two services lives in this crate.

use std::collections::BTreeSet;
use std::path::Path;

const SERVICES: [&str; 3] = ["feedloop-ingest", "feedloop-followup", "feedloop-api"];

/// Every feedloop crate a manifest names, in any dependency table (normal, dev, build,
/// and their target-specific forms).
fn feedloop_deps(manifest: &Path) -> BTreeSet<String> {
    let text = std::fs::read_to_string(manifest)
        .unwrap_or_else(|e| panic!("reading {}: {e}", manifest.display()));
    let doc: toml::Table = text.parse().expect("a manifest is TOML");
    let mut found = BTreeSet::new();
    let mut collect = |t: &toml::Table| {
        for kind in ["dependencies", "dev-dependencies", "build-dependencies"] {
            let names = t
                .get(kind)
                .and_then(|d| d.as_table())
                .into_iter()
                .flat_map(|d| d.keys());
            found.extend(names.filter(|k| k.starts_with("feedloop-")).cloned());
        }
    };
    collect(&doc);
    if let Some(targets) = doc.get("target").and_then(|t| t.as_table()) {
        targets
            .values()
            .filter_map(|t| t.as_table())
            .for_each(&mut collect);
    }
    found
}

fn crate_manifest(dir: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../crates")
        .join(dir)
        .join("Cargo.toml")
}

#[test]
fn no_service_crate_depends_on_another() {
    for (dir, name) in [
        ("ingest", SERVICES[0]),
        ("followup", SERVICES[1]),
        ("api", SERVICES[2]),
    ] {
        let deps = feedloop_deps(&crate_manifest(dir));
        let others: Vec<_> = SERVICES
            .iter()
            .filter(|s| **s != name && deps.contains(**s))
            .collect();
        assert!(
            others.is_empty(),
            "{name} depends on {others:?}: move what they share to feedloop-kit"
        );
    }
}

#[test]
fn core_kit_and_memory_sit_below_the_services() {
    let allowed: [(&str, &[&str]); 3] = [
        ("core", &[]),
        ("kit", &["feedloop-core"]),
        ("memory", &["feedloop-core", "feedloop-kit"]),
    ];
    for (dir, may_use) in allowed {
        let deps = feedloop_deps(&crate_manifest(dir));
        let extra: Vec<_> = deps
            .iter()
            .filter(|d| !may_use.contains(&d.as_str()))
            .collect();
        assert!(extra.is_empty(), "crates/{dir} depends on {extra:?}");
    }
}
