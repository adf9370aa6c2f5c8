//! Mapping invariants over the shipped files, and the loader's checks.

use super::*;

#[test]
fn every_shipped_mapping_file_loads_and_holds_its_invariants() {
    let set = MappingSet::embedded().unwrap();
    // Every product has Aliyun data and at least one family.
    for p in Product::ALL {
        let spec = set
            .products
            .get(&(p, Cloud::Aliyun))
            .unwrap_or_else(|| panic!("{p}: no aliyun section"));
        assert!(spec.namespace.starts_with("acs_"), "{p}");
        assert!(!set.families_for(p, Cloud::Aliyun).is_empty(), "{p}");
    }
    let mut names = BTreeSet::new();
    for f in &set.families {
        assert!(names.insert(f.name.clone()), "duplicate {}", f.name);
        assert!(f.name.starts_with(&format!("{}_", f.product)), "{}", f.name);
        assert!(f.unit.suffix_ok(&f.name), "{}", f.name);
        assert!(f.help.contains(" Source: "), "{}: {}", f.name, f.help);
        for cloud in f.sources.keys() {
            assert!(
                f.help.contains(&format!("{cloud} ")),
                "{}: {}",
                f.name,
                f.help
            );
        }
        for (cloud, srcs) in &f.sources {
            for s in srcs {
                assert!(statistic_ok(*cloud, &s.statistic), "{}", f.name);
                let mut keys: Vec<&String> =
                    s.labels.keys().chain(s.dimension_labels.keys()).collect();
                keys.sort();
                assert_eq!(keys, f.labels.iter().collect::<Vec<_>>(), "{}", f.name);
            }
        }
    }
    assert!(set.families.len() >= 60, "{}", set.families.len());
}

#[test]
fn known_entries_have_the_catalogue_transforms() {
    let set = MappingSet::embedded().unwrap();
    let find = |n: &str| {
        set.families
            .iter()
            .find(|f| f.name == n)
            .unwrap_or_else(|| panic!("{n}"))
    };
    let rx = &find("clb_in_bytes_per_second").sources[&Cloud::Aliyun][0];
    assert_eq!(
        (rx.metric.as_str(), rx.statistic.as_str(), rx.scale),
        ("InstanceTrafficRX", "Average", 0.125)
    );
    let rt = &find("clb_request_duration_seconds").sources[&Cloud::Aliyun][0];
    assert_eq!(rt.scale, 0.001);
    let req = &find("s3_requests_per_second").sources[&Cloud::Aliyun];
    assert!(req.iter().all(|s| s.per_period));
    let storage = &find("s3_storage_bytes").sources[&Cloud::Aliyun][0];
    assert_eq!(storage.period, Some(3600));
}

#[test]
fn transform_scales_then_divides_by_the_period() {
    let s = SourceSpec {
        metric: "m".into(),
        statistic: "Value".into(),
        scale: 0.01,
        per_period: true,
        source_unit: None,
        help_note: None,
        period: None,
        labels: BTreeMap::new(),
        query_dimensions: BTreeMap::new(),
        dimension_labels: BTreeMap::new(),
        value_map: BTreeMap::new(),
    };
    assert_eq!(s.transform(50.0, 1), 0.5);
    assert_eq!(s.transform(40.3, 1), 40.3 / 100.0);
    assert_eq!(s.transform(600.0, 60), 0.1);
}

fn load(text: &str) -> Vec<String> {
    match MappingSet::from_files(&[("x.toml".into(), text.into())]) {
        Ok(_) => Vec::new(),
        Err(e) => e.0,
    }
}

#[test]
fn the_loader_rejects_broken_mappings() {
    let base = "product = \"clb\"\n[cloud.aliyun]\nnamespace = \"acs_slb_dashboard\"\nresource_dimension = \"instanceId\"\n";
    let fam = |body: &str| format!("{base}[[metric]]\n{body}");
    assert!(load(&fam("name = \"ok_connections\"\nhelp = \"h\"\nunit = \"count\"\n[[metric.aliyun]]\nmetric = \"M\"\nstatistic = \"Average\"\n")).is_empty());
    let cases = [
        (fam("name = \"Bad-Name\"\nhelp = \"h\"\nunit = \"count\"\n"), "snake_case"),
        (fam("name = \"rx_bytes\"\nhelp = \"h\"\nunit = \"seconds\"\n"), "does not end as unit"),
        (fam("name = \"x\"\nhelp = \"\"\nunit = \"count\"\n"), "help must not be empty"),
        (fam("name = \"x\"\nhelp = \"h\"\nunit = \"count\"\n[[metric.aliyun]]\nmetric = \"M\"\nstatistic = \"Median\"\n"), "statistic \"Median\""),
        (fam("name = \"x\"\nhelp = \"h\"\nunit = \"count\"\nlabels = [\"code_class\"]\n[[metric.aliyun]]\nmetric = \"M\"\nstatistic = \"Value\"\n"), "label keys"),
        (fam("name = \"x\"\nhelp = \"h\"\nunit = \"count\"\n[[metric.aliyun]]\nmetric = \"M\"\nstatistic = \"Value\"\n[[metric.aliyun]]\nmetric = \"N\"\nstatistic = \"Value\"\n"), "same labels"),
        (fam("name = \"x\"\nhelp = \"h\"\nunit = \"count\"\nextra = 1\n"), "unknown field"),
        (fam("name = \"x\"\nhelp = \"h\"\nunit = \"count\"\nlabels = [\"region\"]\n"), "common labels"),
        (format!("{base}[[metric]]\nname = \"x\"\nhelp = \"h\"\nunit = \"count\"\n[[metric]]\nname = \"x\"\nhelp = \"h\"\nunit = \"count\"\n"), "defined twice"),
        ("product = \"clb\"\n[[metric]]\nname = \"x\"\nhelp = \"h\"\nunit = \"count\"\n[[metric.aliyun]]\nmetric = \"M\"\nstatistic = \"Value\"\n".to_string(), "no [cloud.aliyun] section"),
        ("product = \"ecs\"\n".to_string(), "is not one of"),
        (fam("name = \"x_total\"\nhelp = \"h\"\nunit = \"count\"\n"), "must not end in _total"),
    ];
    for (text, want) in cases {
        let e = load(&text);
        assert!(
            e.iter().any(|x| x.contains(want)),
            "want {want:?} in {e:#?}"
        );
    }
}
