//! Live membership inside one process: a result collected under one membership is never served
//! under another, and a replica dropped from the list collects nothing.

use super::*;
use multicloud_exporter::config::MembershipSource;
use multicloud_exporter::scrape::ScrapeSource;

#[tokio::test]
async fn a_membership_change_invalidates_the_result_cache() {
    let dir = std::env::temp_dir().join(format!("mce-membership-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("members");
    std::fs::write(&file, "a\nb\n").unwrap();
    let path = file.clone();
    let h = harness_with(Estate::builtin(), move |c| {
        c.cluster.discovery = MembershipSource::File;
        c.cluster.file = Some(path);
        c.cluster.self_name = Some("a".into());
    })
    .await;
    h.rt.membership.refresh().await;
    let collector = Collector::new(h.rt.clone());
    let deadline = || Instant::now() + Duration::from_secs(30);
    let (half, how, _) = collector.snapshot(deadline()).await;
    assert_eq!(how, ScrapeSource::Collected);
    assert!(
        !half.jobs.is_empty() && half.jobs.len() < 40,
        "{}",
        half.jobs.len()
    );
    assert_eq!(collector.snapshot(deadline()).await.1, ScrapeSource::Cached);
    // The same members again (reordered): the membership in force is unchanged, so is the cache.
    std::fs::write(&file, "b\na\n").unwrap();
    h.rt.membership.refresh().await;
    assert_eq!(collector.snapshot(deadline()).await.1, ScrapeSource::Cached);
    // b leaves: a owns everything, and the cached half is not served.
    std::fs::write(&file, "a\n").unwrap();
    h.rt.membership.refresh().await;
    let (all, how, _) = collector.snapshot(deadline()).await;
    assert_eq!(how, ScrapeSource::Collected);
    assert_eq!(all.jobs.len(), 40);
    // a leaves: it collects nothing, at once.
    std::fs::write(&file, "b\n").unwrap();
    h.rt.membership.refresh().await;
    let (none, how, _) = collector.snapshot(deadline()).await;
    assert_eq!(how, ScrapeSource::Collected);
    assert!(none.jobs.is_empty(), "{:?}", none.jobs.len());
    let t = text(&h, &none);
    assert_eq!(series(&t, "clb_active_connections"), 0);
    // [a, b] -> [a] -> [b]; the reordering was not a change.
    assert!(
        t.contains("\nmulticloud_shard_membership_changes_total 2\n"),
        "{t}"
    );
    assert!(t.contains("\nmulticloud_shard_owned_keys 0\n"), "{t}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn a_collection_of_a_replaced_config_is_not_served_afterwards() {
    let h = harness_full(
        Estate::builtin(),
        SimSettings {
            latency: Duration::from_millis(40),
            ..SimSettings::default()
        },
        MappingSet::embedded().unwrap(),
        |c| c.accounts.truncate(1),
    )
    .await;
    let collector = Collector::new(h.rt.clone());
    let deadline = Instant::now() + Duration::from_secs(60);
    let c2 = collector.clone();
    let in_flight = tokio::spawn(async move { c2.snapshot(deadline).await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (reloaded, stale) =
        h.rt.reloaded(h.rt.config.clone(), h.rt.mappings.clone())
            .unwrap();
    let reloaded = Arc::new(reloaded);
    collector.replace_runtime(reloaded.clone());
    stale.drop_now();
    let (_, how, made_by) = in_flight.await.unwrap();
    assert_eq!(how, ScrapeSource::Collected);
    assert!(
        Arc::ptr_eq(&made_by, &h.rt),
        "rendered with the runtime it was collected with"
    );
    // The old collection finished after the swap; it is not reused for the new config.
    let (_, how, made_by) = collector.snapshot(deadline).await;
    assert_eq!(how, ScrapeSource::Collected);
    assert!(Arc::ptr_eq(&made_by, &reloaded));
    assert_eq!(collector.snapshot(deadline).await.1, ScrapeSource::Cached);
}
