//! A warm scrape makes exactly the calls the clouds' batch limits require (`cost::minimum`,
//! computed from the estate and the mappings, not from the exporter), on every cloud, for an
//! estate whose sizes cross each limit; and an HA pair scraping at the same moment makes one
//! set of calls.

use std::collections::BTreeMap;

use multicloud_exporter::cost::minimum::{estate_demands, minimum_calls, monitor_api};
use multicloud_exporter::sim::synthetic::{Layout, Slot};

use super::*;

/// Calls served per cloud: (monitor API, everything).
fn served(h: &Harness) -> BTreeMap<Cloud, (u64, u64)> {
    let mut out = BTreeMap::new();
    for (cloud, accounts) in h.sim.state.calls_by_account() {
        let c = Cloud::parse(&cloud).unwrap();
        for apis in accounts.values() {
            for (api, n) in apis {
                let e = out.entry(c).or_insert((0, 0));
                e.1 += n;
                if api == monitor_api(c) {
                    e.0 += n;
                }
            }
        }
    }
    out
}

/// Counts that cross every limit somewhere: Aliyun 1200 rows (one page of 1440, two of 1000)
/// and 1500 rows (two pages) of the two-zone GWLB metrics; Tencent 60 load balancers (two calls
/// of 50 per metric); AWS 40 ALBs of 16 queries beside the region's other products (over 500
/// queries); Huawei 30 load balancers of 19 metrics (over 500). Some slots stay empty.
fn mixed(slot: &Slot) -> usize {
    let first = matches!(
        slot.region,
        "cn-hangzhou" | "ap-guangzhou" | "us-east-1" | "cn-north-4"
    );
    match (slot.cloud, slot.product) {
        (Cloud::Aliyun, Product::Gwlb) => {
            if first {
                600
            } else {
                750
            }
        }
        (Cloud::Aliyun, Product::Alb | Product::Nlb) if !first => 0,
        (Cloud::Tencent, Product::Clb) if first => 60,
        (Cloud::Aws, Product::Alb) if first => 40,
        (Cloud::Huawei, Product::Clb) if first => 30,
        (Cloud::Huawei, Product::S3) if !first => 0,
        _ => 2,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_warm_scrape_makes_the_minimum_calls_on_every_cloud() {
    let layout = Layout {
        accounts_per_cloud: 1,
        regions_per_account: 2,
    };
    let estate = layout.estate(mixed);
    let h = harness_with(estate.clone(), |_| {}).await;
    let cold = collect(&h).await;
    let failed: Vec<_> = cold.jobs.iter().filter(|j| !j.success).collect();
    assert!(failed.is_empty(), "{failed:?}");
    h.sim.state.reset_calls();
    let warm = collect(&h).await;
    assert!(warm.jobs.iter().all(|j| j.success));
    let s = &h.rt.config.server;
    let minimum = minimum_calls(&estate_demands(
        &estate,
        &h.rt.mappings,
        s.scrape_interval.as_secs(),
        s.ingestion_delay.as_secs(),
    ));
    let served = served(&h);
    for cloud in Cloud::ALL {
        let (monitor, all) = served[&cloud];
        // Nothing but monitor data is fetched while discovery and metadata are cached.
        assert_eq!(monitor, all, "{cloud}: {:?}", h.sim.state.calls());
        assert_eq!(
            monitor, minimum[&cloud],
            "{cloud}: served ÷ minimum must be 1.00"
        );
    }
    // The limits really were crossed: more than one call per metric or per region somewhere.
    assert_eq!(minimum[&Cloud::Aws], 2 + 1 + 2);
    assert_eq!(minimum[&Cloud::Huawei], 2 + 3 + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ha_pair_scraping_at_the_same_moment_makes_one_set_of_calls() {
    // No result cache: only single-flight can make the second scraper free.
    let h = harness_with(Estate::builtin(), |c| {
        c.server.result_cache_ttl = Some(Duration::ZERO)
    })
    .await;
    let addr = serve(h.rt.clone()).await;
    let (status, _) = get(addr, "/metrics", Some("20")).await;
    assert_eq!(status, 200);
    h.sim.state.reset_calls();
    let (_, one) = get(addr, "/metrics", Some("20")).await;
    let single = h.sim.state.total_calls();
    assert!(single > 0);
    h.sim.state.reset_calls();
    let ((s1, first), (s2, second)) = tokio::join!(
        get(addr, "/metrics", Some("20")),
        get(addr, "/metrics", Some("20"))
    );
    assert_eq!((s1, s2), (200, 200));
    assert_eq!(
        h.sim.state.total_calls(),
        single,
        "a pair ÷ one scraper must be 1.00"
    );
    assert_eq!(stable(&first), stable(&second));
    assert_eq!(stable(&first), stable(&one));
}
