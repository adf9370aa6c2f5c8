//! `plan` and `shard` measure what scrapes cost: their counts must be the calls the simulator
//! serves.

use std::collections::BTreeSet;
use std::time::Duration;

use multicloud_exporter::cost;

use super::*;

fn sim_total_per_cloud(h: &Harness) -> std::collections::BTreeMap<String, u64> {
    h.sim
        .state
        .calls_by_account()
        .into_iter()
        .map(|(cloud, accounts)| (cloud, accounts.values().flat_map(|a| a.values()).sum()))
        .collect()
}

#[tokio::test]
async fn plan_counts_the_calls_a_scrape_makes() {
    let h = harness().await;
    let plan = cost::plan_estate(&h.rt).await;
    assert!(plan.failed.is_empty(), "{:?}", plan.failed);
    assert_eq!(plan.jobs.len(), 40);
    // Every API called has a name `[accounts.api_quotas]` accepts.
    for (cloud, apis) in &plan.cold {
        let known = multicloud_exporter::cloud::limiter::apis(Cloud::parse(cloud).unwrap());
        for api in apis.keys() {
            assert!(
                known.contains(&api.as_str()),
                "{cloud} {api} is not in limiter::apis"
            );
        }
    }
    let served_by_both = h.sim.state.total_calls();
    let planned_cold: u64 = plan.cold.values().flat_map(|m| m.values()).sum();
    let per_scrape: u64 = plan.per_scrape.values().flat_map(|m| m.values()).sum();
    assert_eq!(served_by_both, planned_cold + per_scrape);
    // A further scrape costs exactly what the plan says, cloud by cloud.
    h.sim.state.reset_calls();
    collect(&h).await;
    let planned: std::collections::BTreeMap<String, u64> = plan
        .per_scrape
        .iter()
        .map(|(c, apis)| (c.clone(), apis.values().sum()))
        .collect();
    assert_eq!(sim_total_per_cloud(&h), planned);
    // Discovery and metadata are not made again while cached.
    assert_eq!(plan.per_scrape["aliyun"].get("DescribeLoadBalancers"), None);
    let clb_regions: usize =
        h.rt.config
            .accounts
            .iter()
            .filter(|a| a.cloud == Cloud::Aliyun)
            .map(|a| a.regions.len())
            .sum();
    assert_eq!(
        plan.cold["aliyun"]["DescribeLoadBalancers"],
        clb_regions as u64
    );
    let v = cost::plan_json(&plan, Duration::from_secs(60), Duration::from_secs(3600));
    let refresh = v["refresh_calls_total"].as_u64().unwrap();
    assert_eq!(refresh, planned_cold - per_scrape);
    assert_eq!(
        v["calls_per_month_total"].as_u64().unwrap(),
        per_scrape * 43_200 + refresh * 720
    );
    let v = cost::plan_json(&plan, Duration::from_secs(300), Duration::from_secs(3600));
    assert_eq!(
        v["calls_per_month_total"].as_u64().unwrap(),
        per_scrape * 8_640 + refresh * 720
    );
}

#[tokio::test]
async fn shard_splits_the_jobs_and_measures_each_members_calls() {
    let h = harness().await;
    let members: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
    let (shares, failed) = cost::shard_estate(&h.rt, &members, Some("b")).await;
    assert!(failed.is_empty(), "{failed:?}");
    let mut seen = BTreeSet::new();
    for s in &shares {
        assert_eq!(s.is_self, s.name == "b");
        assert!(!s.jobs.is_empty(), "{} owns nothing", s.name);
        for j in &s.jobs {
            assert!(seen.insert(j.key.clone()), "{} is owned twice", j.key);
        }
    }
    assert_eq!(seen.len(), 40);
    // Each member's measured calls are what a replica with that name makes per scrape.
    for s in &shares {
        let mut config = (*h.rt.config).clone();
        config.cluster.discovery = config::MembershipSource::File;
        let dir = std::env::temp_dir().join(format!("mce-shard-{}-{}", s.name, std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("members"), "a\nb\nc\n").unwrap();
        config.cluster.file = Some(dir.join("members"));
        config.cluster.self_name = Some(s.name.clone());
        let rt = multicloud_exporter::app::build_runtime(
            config,
            MappingSet::embedded().unwrap(),
            Clock::Fixed(NOW),
        )
        .unwrap();
        rt.membership.refresh().await;
        let deadline = Instant::now() + Duration::from_secs(30);
        scrape::collect(rt.clone(), &JobFilter::default(), deadline).await;
        h.sim.state.reset_calls();
        let snap = scrape::collect(rt.clone(), &JobFilter::default(), deadline).await;
        assert_eq!(snap.jobs.len(), s.jobs.len());
        let measured: u64 = s.per_scrape.values().flat_map(|m| m.values()).sum();
        assert_eq!(h.sim.state.total_calls(), measured, "member {}", s.name);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
