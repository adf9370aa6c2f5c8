//! Generated estates for the estate benchmark and the call-count tests: every product of every
//! cloud, spread over several accounts per cloud and several regions per account, with a chosen
//! number of resources in each (cloud, account, region, product) slot. IDs, keys and names take
//! each cloud's real shapes where discovery or the monitor APIs depend on them (Tencent bucket
//! names end in the APPID, Huawei load balancers have UUIDs).

use std::collections::BTreeMap;

use super::estate::{id_prefix, Estate, SimAccount, SimResource};
use crate::cloud::{Cloud, Product};

/// Regions of each cloud a layout draws from (each must be one the simulator serves, so the
/// estate lists them).
fn region_names(cloud: Cloud) -> &'static [&'static str] {
    match cloud {
        Cloud::Aliyun => &["cn-hangzhou", "cn-beijing", "cn-shanghai", "cn-shenzhen"],
        Cloud::Tencent => &["ap-guangzhou", "ap-shanghai", "ap-beijing", "ap-chengdu"],
        Cloud::Aws => &["us-east-1", "eu-west-1", "ap-southeast-1", "us-west-2"],
        Cloud::Huawei => &["cn-north-4", "ap-southeast-1", "cn-east-3", "cn-south-1"],
    }
}

/// The most regions per account a layout can have.
pub const MAX_REGIONS: usize = 4;

/// How an estate is spread: the same number of accounts on every cloud, each in the same number
/// of regions, each region with every product of its cloud.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Accounts on each cloud.
    pub accounts_per_cloud: usize,
    /// Regions of each account (at most [`MAX_REGIONS`]).
    pub regions_per_account: usize,
}

/// Where resources go: one product of one account in one region.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Slot {
    /// The cloud.
    pub cloud: Cloud,
    /// The account's index among its cloud's accounts.
    pub account: usize,
    /// The region.
    pub region: &'static str,
    /// The product.
    pub product: Product,
}

/// The ID of the account with index `n` on `cloud`, in the cloud's own shape.
pub fn account_id(cloud: Cloud, n: usize) -> String {
    match cloud {
        Cloud::Aliyun => format!("{:016}", 1_100_000_000_000_000u64 + n as u64),
        Cloud::Tencent => format!("{:012}", 200_000_000_000u64 + n as u64),
        Cloud::Aws => format!("{:012}", 300_000_000_000u64 + n as u64),
        Cloud::Huawei => format!("{:032x}", 0x4000_0000u128 + n as u128),
    }
}

fn access_key(cloud: Cloud, n: usize) -> (String, String) {
    let id = match cloud {
        Cloud::Aliyun => format!("LTAI5tESTATE{n:08}"),
        Cloud::Tencent => format!("AKIDESTATE{n:026}"),
        Cloud::Aws => format!("AKIAESTATE{n:010}"),
        Cloud::Huawei => format!("HWESTATE{n:013}"),
    };
    (
        id,
        format!("EstateSecret{}{n:08}abcdefghijklmnop", cloud.as_str()),
    )
}

/// The ID of the `n`th resource of a slot.
fn resource_id(slot: &Slot, region_index: usize, n: usize) -> String {
    let tag = format!("a{}r{region_index}", slot.account);
    match (slot.cloud, slot.product) {
        // Tencent's COS monitoring names a bucket by its APPID, the suffix of its name.
        (Cloud::Tencent, Product::S3) => format!("bkt-{tag}-{n:05}-1250000000"),
        (_, Product::S3) => format!("bkt-{}-{tag}-{n:05}", slot.cloud.as_str()),
        (Cloud::Huawei, _) => {
            let h = crate::util::fnv1a32(format!("{tag}|{n}").as_bytes());
            format!(
                "{h:08x}-{:04x}-4{region_index:03x}-8{:03x}-{n:012x}",
                slot.account, 0
            )
        }
        (cloud, product) => format!(
            "{}-{}{tag}-{n:05}",
            id_prefix(product),
            &cloud.as_str()[..2]
        ),
    }
}

impl Layout {
    /// Every slot, in a stable order (cloud, account, region, product).
    pub fn slots(&self) -> Vec<Slot> {
        let mut out = Vec::new();
        for cloud in Cloud::ALL {
            for account in 0..self.accounts_per_cloud {
                for region in self.regions(cloud) {
                    for product in cloud.products() {
                        out.push(Slot {
                            cloud,
                            account,
                            region,
                            product: *product,
                        });
                    }
                }
            }
        }
        out
    }

    /// The regions each account of `cloud` has.
    pub fn regions(&self, cloud: Cloud) -> impl Iterator<Item = &'static str> {
        region_names(cloud)
            .iter()
            .copied()
            .take(self.regions_per_account.min(MAX_REGIONS))
    }

    /// The estate with `count(slot)` resources in every slot. Every account is listed, even
    /// one with no resources (its jobs then cost no monitor calls).
    pub fn estate(&self, count: impl Fn(&Slot) -> usize) -> Estate {
        let mut accounts: BTreeMap<(Cloud, usize), SimAccount> = BTreeMap::new();
        for cloud in Cloud::ALL {
            for n in 0..self.accounts_per_cloud {
                let (key, secret) = access_key(cloud, n);
                accounts.insert(
                    (cloud, n),
                    SimAccount {
                        cloud,
                        account_id: account_id(cloud, n),
                        access_key_id: key,
                        access_key_secret: secret,
                        resources: Vec::new(),
                    },
                );
            }
        }
        for slot in self.slots() {
            let region_index = region_names(slot.cloud)
                .iter()
                .position(|r| *r == slot.region)
                .unwrap_or(0);
            let Some(account) = accounts.get_mut(&(slot.cloud, slot.account)) else {
                continue;
            };
            for n in 0..count(&slot) {
                let id = resource_id(&slot, region_index, n);
                account.resources.push(SimResource {
                    product: slot.product.as_str().to_string(),
                    name: id.clone(),
                    region: slot.region.to_string(),
                    tags: BTreeMap::from([
                        ("CodeName".to_string(), format!("svc-{}", n % 16)),
                        ("env".to_string(), "bench".to_string()),
                    ]),
                    id,
                    vip: None,
                    vpc_id: None,
                    internal: false,
                });
            }
        }
        let regions = |cloud: Cloud| region_names(cloud).iter().map(|r| r.to_string()).collect();
        Estate {
            regions: regions(Cloud::Aliyun),
            tencent_regions: regions(Cloud::Tencent),
            aws_regions: regions(Cloud::Aws),
            huawei_regions: regions(Cloud::Huawei),
            accounts: accounts.into_values().collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_layout_fills_every_slot_with_unique_resources() {
        let layout = Layout {
            accounts_per_cloud: 2,
            regions_per_account: 3,
        };
        let products: usize = Cloud::ALL.iter().map(|c| c.products().len()).sum();
        assert_eq!(layout.slots().len(), 2 * 3 * products);
        let e = layout.estate(|s| if s.cloud == Cloud::Aws { 3 } else { 2 });
        assert_eq!(e.accounts.len(), 8);
        let ids: std::collections::BTreeSet<&str> = e
            .accounts
            .iter()
            .flat_map(|a| a.resources.iter().map(|r| r.id.as_str()))
            .collect();
        let total: usize = e.accounts.iter().map(|a| a.resources.len()).sum();
        assert_eq!(ids.len(), total);
        let aws_products = Cloud::Aws.products().len();
        assert_eq!(
            total,
            2 * 3 * (2 * (products - aws_products) + 3 * aws_products)
        );
        let tencent = e
            .accounts
            .iter()
            .find(|a| a.cloud == Cloud::Tencent)
            .unwrap();
        assert!(tencent
            .resources
            .iter()
            .filter(|r| r.product == "s3")
            .all(|r| r.id.ends_with("-1250000000")));
        // Each account is configured with the regions its resources are in.
        let accounts = e.simulator_accounts();
        assert!(accounts.iter().all(|a| a.regions.len() == 3));
    }
}
