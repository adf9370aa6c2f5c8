//! The simulator's declarative estate: accounts (with their keys), regions and resources with
//! tags. Loadable from TOML; a built-in default feeds `demo`. Large estates are generated with
//! `[[accounts.generate]]` entries instead of listing every resource.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use crate::cloud::{Cloud, Product};
use crate::config::SimulatorAccount;

/// Everything the simulator serves.
#[derive(Clone, Debug, PartialEq)]
pub struct Estate {
    /// Aliyun regions that exist (others answer `InvalidRegionId`).
    pub regions: Vec<String>,
    /// Tencent regions that exist (others answer `UnsupportedRegion`).
    pub tencent_regions: Vec<String>,
    /// AWS regions enabled (others answer `InvalidRegion`).
    pub aws_regions: Vec<String>,
    /// Huawei regions (each account has a project in every one).
    pub huawei_regions: Vec<String>,
    /// Accounts.
    pub accounts: Vec<SimAccount>,
}

/// One account.
#[derive(Clone, Debug, PartialEq)]
pub struct SimAccount {
    /// The cloud the account belongs to.
    pub cloud: Cloud,
    /// Account ID (Aliyun UID, Tencent UIN).
    pub account_id: String,
    /// Access key ID the account signs with.
    pub access_key_id: String,
    /// Its secret.
    pub access_key_secret: String,
    /// Resources.
    pub resources: Vec<SimResource>,
}

impl SimAccount {
    /// The regions the account has resources in, sorted.
    pub fn regions(&self) -> Vec<&str> {
        let mut regions: Vec<&str> = self.resources.iter().map(|r| r.region.as_str()).collect();
        regions.sort_unstable();
        regions.dedup();
        regions
    }

    /// The account's resources of a product in a region, by ID.
    pub fn resources_in(&self, product: Product, region: &str) -> Vec<&SimResource> {
        let mut v: Vec<&SimResource> = self
            .resources
            .iter()
            .filter(|r| r.product() == Some(product) && r.region == region)
            .collect();
        v.sort_by(|a, b| a.id.cmp(&b.id));
        v
    }
}

/// One resource.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimResource {
    /// Product.
    pub product: String,
    /// Resource ID (bucket name for s3).
    pub id: String,
    /// Display name.
    #[serde(default)]
    pub name: String,
    /// Region.
    pub region: String,
    /// Tags.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// The VIP of a Tencent load balancer (derived from the ID when absent).
    #[serde(default)]
    pub vip: Option<String>,
    /// The VPC of a Tencent private load balancer or GWLB.
    #[serde(default)]
    pub vpc_id: Option<String>,
    /// A Tencent load balancer on a private network (`LoadBalancerType = INTERNAL`).
    #[serde(default)]
    pub internal: bool,
}

impl SimResource {
    /// The product, if valid.
    pub fn product(&self) -> Option<Product> {
        Product::parse(&self.product)
    }

    /// The VIP: the configured one, or one derived from the ID (`10.x.y.z` on a private
    /// network, `81.x.y.z` otherwise), so generated estates need not list addresses.
    pub fn vip(&self) -> String {
        if let Some(v) = &self.vip {
            return v.clone();
        }
        let h = crate::util::fnv1a32(self.id.as_bytes());
        let first = if self.internal { 10 } else { 81 };
        format!(
            "{first}.{}.{}.{}",
            (h >> 16) & 0xff,
            (h >> 8) & 0xff,
            (h & 0xff).max(1)
        )
    }

    /// The VPC ID (`vpc-default` when none is configured).
    pub fn vpc(&self) -> String {
        self.vpc_id.clone().unwrap_or_else(|| "vpc-default".into())
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EstateFile {
    regions: Vec<String>,
    #[serde(default)]
    tencent_regions: Vec<String>,
    #[serde(default)]
    aws_regions: Vec<String>,
    #[serde(default)]
    huawei_regions: Vec<String>,
    accounts: Vec<AccountFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AccountFile {
    #[serde(default = "default_cloud")]
    cloud: String,
    account_id: String,
    access_key_id: String,
    access_key_secret: String,
    #[serde(default)]
    resources: Vec<SimResource>,
    #[serde(default)]
    generate: Vec<Generate>,
}

fn default_cloud() -> String {
    "aliyun".into()
}

/// `count` resources of a product in a region, IDs `<prefix>-<n>`, tagged `CodeName=<prefix>`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Generate {
    product: String,
    region: String,
    count: usize,
    prefix: String,
}

/// The ID prefix real resources of a product carry.
pub fn id_prefix(product: Product) -> &'static str {
    match product {
        Product::Clb => "lb",
        Product::Alb => "alb",
        Product::Nlb => "nlb",
        Product::Gwlb => "gwlb",
        Product::Bwp => "cbwp",
        Product::S3 => "bucket",
    }
}

impl Estate {
    /// Parse an estate TOML text.
    pub fn from_toml(text: &str) -> Result<Estate, String> {
        let f: EstateFile = toml::from_str(text).map_err(|e| format!("estate: {e}"))?;
        let mut accounts = Vec::new();
        for a in f.accounts {
            let mut resources = a.resources;
            for g in a.generate {
                for n in 0..g.count {
                    resources.push(SimResource {
                        product: g.product.clone(),
                        id: format!("{}-{n:05}", g.prefix),
                        name: format!("{}-{n}", g.prefix),
                        region: g.region.clone(),
                        tags: BTreeMap::from([("CodeName".to_string(), g.prefix.clone())]),
                        vip: None,
                        vpc_id: None,
                        internal: false,
                    });
                }
            }
            for r in &resources {
                if r.product().is_none() {
                    return Err(format!(
                        "estate: resource {} has unknown product {:?}",
                        r.id, r.product
                    ));
                }
            }
            let cloud = match Cloud::parse(&a.cloud) {
                Some(c) => c,
                _ => {
                    return Err(format!(
                        "estate: account {} has cloud {:?}: the simulator serves \"aliyun\", \"tencent\", \"aws\" and \"huawei\"",
                        a.account_id, a.cloud
                    ))
                }
            };
            accounts.push(SimAccount {
                cloud,
                account_id: a.account_id,
                access_key_id: a.access_key_id,
                access_key_secret: a.access_key_secret,
                resources,
            });
        }
        Ok(Estate {
            regions: f.regions,
            tencent_regions: f.tencent_regions,
            aws_regions: f.aws_regions,
            huawei_regions: f.huawei_regions,
            accounts,
        })
    }

    /// Load an estate file.
    pub fn from_file(path: &Path) -> Result<Estate, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Estate::from_toml(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// The built-in estate of `demo`.
    pub fn builtin() -> Estate {
        match Estate::from_toml(BUILTIN) {
            Ok(e) => e,
            // The built-in text is a constant covered by a unit test.
            Err(e) => unreachable!("built-in estate: {e}"),
        }
    }

    /// The account of a cloud signing with `access_key_id`.
    pub fn account_by_key(&self, cloud: Cloud, access_key_id: &str) -> Option<&SimAccount> {
        self.accounts
            .iter()
            .find(|a| a.cloud == cloud && a.access_key_id == access_key_id)
    }

    /// Every account as the exporter's config names it, each with the regions its resources
    /// are in.
    pub fn simulator_accounts(&self) -> Vec<SimulatorAccount> {
        self.accounts
            .iter()
            .map(|a| {
                let regions: std::collections::BTreeSet<String> =
                    a.resources.iter().map(|r| r.region.clone()).collect();
                SimulatorAccount {
                    cloud: a.cloud,
                    account_id: a.account_id.clone(),
                    access_key_id: a.access_key_id.clone(),
                    access_key_secret: a.access_key_secret.clone(),
                    regions: regions.into_iter().collect(),
                }
            })
            .collect()
    }

    /// Remove a resource everywhere; true when it existed.
    pub fn remove_resource(&mut self, id: &str) -> bool {
        let mut found = false;
        for a in &mut self.accounts {
            let before = a.resources.len();
            a.resources.retain(|r| r.id != id);
            found |= a.resources.len() != before;
        }
        found
    }
}

/// The built-in estate: two accounts, two regions, every product, with tags.
pub const BUILTIN: &str = r#"
regions = ["cn-hangzhou", "cn-beijing", "cn-shanghai"]
tencent_regions = ["ap-guangzhou", "ap-shanghai", "ap-beijing"]
aws_regions = ["us-east-1", "eu-west-1"]
huawei_regions = ["cn-north-4", "ap-southeast-1"]

[[accounts]]
account_id = "1234567890123456"
access_key_id = "LTAI5tDEMOKEYID0001"
access_key_secret = "DemoSecretKey0001abcdefghijklmn"

[[accounts.resources]]
product = "clb"
id = "lb-bp1demo0001"
name = "web-frontend"
region = "cn-hangzhou"
tags = { CodeName = "web", env = "prod", "kubernetes.io/service-name" = "default/web" }

[[accounts.resources]]
product = "clb"
id = "lb-bp1demo0002"
name = "api-gateway"
region = "cn-hangzhou"
tags = { CodeName = "api", env = "prod" }

[[accounts.resources]]
product = "clb"
id = "lb-2zedemo0003"
name = "batch"
region = "cn-beijing"
tags = { CodeName = "batch", env = "staging" }

[[accounts.resources]]
product = "alb"
id = "alb-demo0001"
name = "shop-alb"
region = "cn-hangzhou"
tags = { CodeName = "shop", env = "prod" }

[[accounts.resources]]
product = "alb"
id = "alb-demo0002"
name = "admin-alb"
region = "cn-beijing"
tags = { env = "prod" }

[[accounts.resources]]
product = "nlb"
id = "nlb-demo0001"
name = "mqtt"
region = "cn-hangzhou"
tags = { CodeName = "mqtt" }

[[accounts.resources]]
product = "gwlb"
id = "gwlb-demo0001"
name = "firewall"
region = "cn-hangzhou"
tags = { CodeName = "fw" }

[[accounts.resources]]
product = "bwp"
id = "cbwp-demo0001"
name = "shared-egress"
region = "cn-hangzhou"
tags = { CodeName = "egress" }

[[accounts.resources]]
product = "bwp"
id = "cbwp-demo0002"
name = "bj-egress"
region = "cn-beijing"

[[accounts.resources]]
product = "s3"
id = "demo-assets"
region = "cn-hangzhou"
tags = { CodeName = "assets", env = "prod" }

[[accounts.resources]]
product = "s3"
id = "demo-logs"
region = "cn-beijing"
tags = { CodeName = "logs" }

[[accounts]]
account_id = "6543210987654321"
access_key_id = "LTAI5tDEMOKEYID0002"
access_key_secret = "DemoSecretKey0002abcdefghijklmn"

[[accounts.resources]]
product = "clb"
id = "lb-uf6demo0001"
name = "partner-lb"
region = "cn-shanghai"
tags = { CodeName = "partner" }

[[accounts.resources]]
product = "s3"
id = "partner-exports"
region = "cn-shanghai"

[[accounts]]
cloud = "tencent"
account_id = "100012345678"
access_key_id = "AKIDDEMOSECRETID00000000000000000001"
access_key_secret = "DemoTencentSecretKey0001abcdefgh"

[[accounts.resources]]
product = "clb"
id = "lb-gzdemo01"
name = "web-public"
region = "ap-guangzhou"
vip = "81.70.10.1"
tags = { CodeName = "web", env = "prod" }

# Two private load balancers with the same VIP in different VPCs: QCE/LB_PRIVATE tells them
# apart by vpcId.
[[accounts.resources]]
product = "clb"
id = "lb-gzdemo02"
name = "orders-internal"
region = "ap-guangzhou"
internal = true
vip = "10.0.0.10"
vpc_id = "vpc-gzorders"
tags = { CodeName = "orders" }

[[accounts.resources]]
product = "clb"
id = "lb-gzdemo03"
name = "billing-internal"
region = "ap-guangzhou"
internal = true
vip = "10.0.0.10"
vpc_id = "vpc-gzbilling"
tags = { CodeName = "billing" }

[[accounts.resources]]
product = "clb"
id = "lb-shdemo01"
name = "cdn-origin"
region = "ap-shanghai"
vip = "101.35.20.7"

[[accounts.resources]]
product = "gwlb"
id = "gwlb-gzdemo01"
name = "inspection"
region = "ap-guangzhou"
vip = "10.0.1.100"
vpc_id = "vpc-gzorders"
tags = { CodeName = "ids" }

[[accounts.resources]]
product = "bwp"
id = "bwp-gzdemo01"
name = "shared-egress"
region = "ap-guangzhou"
tags = { CodeName = "egress" }

[[accounts.resources]]
product = "s3"
id = "demo-assets-1250000000"
region = "ap-guangzhou"
tags = { CodeName = "assets", env = "prod" }

[[accounts.resources]]
product = "s3"
id = "demo-logs-1250000000"
region = "ap-shanghai"

[[accounts]]
cloud = "aws"
account_id = "123456789012"
access_key_id = "AKIASIMDEMO000000001"
access_key_secret = "DemoAwsSecretKey0001abcdefghijklmnopqrst"

[[accounts.resources]]
product = "alb"
id = "shop-alb"
region = "us-east-1"
tags = { CodeName = "shop", env = "prod" }

[[accounts.resources]]
product = "nlb"
id = "mqtt-nlb"
region = "us-east-1"
tags = { "kubernetes.io/service-name" = "iot/mqtt" }

[[accounts.resources]]
product = "gwlb"
id = "fw-gwlb"
region = "us-east-1"
internal = true

[[accounts.resources]]
product = "clb"
id = "legacy-web"
region = "us-east-1"
tags = { Name = "legacy" }

[[accounts.resources]]
product = "s3"
id = "demo-aws-assets"
region = "us-east-1"
tags = { CodeName = "assets" }

[[accounts.resources]]
product = "s3"
id = "demo-aws-logs"
region = "eu-west-1"

[[accounts]]
cloud = "huawei"
account_id = "0a1b2c3d4e5f60718293a4b5c6d7e8f9"
access_key_id = "HWSIMDEMOAK0000000001"
access_key_secret = "HwDemoSecretKey0001abcdefghijklmnopqrst"

[[accounts.resources]]
product = "clb"
id = "3ae5b5c6-1c0f-4c3b-9e2a-5a7c0d5b0a11"
name = "web-elb"
region = "cn-north-4"
tags = { CodeName = "web" }

[[accounts.resources]]
product = "clb"
id = "7d8f1b22-aaaa-bbbb-cccc-0123456789ab"
name = "api-elb"
region = "ap-southeast-1"

[[accounts.resources]]
product = "s3"
id = "demo-obs-assets"
region = "cn-north-4"
tags = { CodeName = "assets" }
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_estate_parses_and_covers_every_product() {
        let e = Estate::builtin();
        assert_eq!(e.accounts.len(), 5);
        let hw = &e.accounts[4];
        for p in Cloud::Huawei.products() {
            assert!(hw.resources.iter().any(|r| r.product() == Some(*p)), "{p}");
        }
        let aws = &e.accounts[3];
        for p in Cloud::Aws.products() {
            assert!(aws.resources.iter().any(|r| r.product() == Some(*p)), "{p}");
        }
        let tencent = &e.accounts[2];
        assert_eq!(tencent.cloud, Cloud::Tencent);
        for p in Cloud::Tencent.products() {
            assert!(
                tencent.resources.iter().any(|r| r.product() == Some(*p)),
                "{p}"
            );
        }
        for p in Product::ALL {
            assert!(
                e.accounts[0]
                    .resources
                    .iter()
                    .any(|r| r.product() == Some(p)),
                "{p}"
            );
        }
    }

    #[test]
    fn generated_resources_and_errors() {
        let e = Estate::from_toml(
            r#"regions = ["cn-hangzhou"]
[[accounts]]
account_id = "1"
access_key_id = "a"
access_key_secret = "s"
[[accounts.generate]]
product = "clb"
region = "cn-hangzhou"
count = 3
prefix = "lb-gen"
"#,
        )
        .unwrap();
        assert_eq!(e.accounts[0].resources.len(), 3);
        assert_eq!(e.accounts[0].resources[2].id, "lb-gen-00002");
        assert!(Estate::from_toml("regions = []\n[[accounts]]\naccount_id=\"1\"\naccess_key_id=\"a\"\naccess_key_secret=\"s\"\n[[accounts.resources]]\nproduct=\"x\"\nid=\"i\"\nregion=\"r\"\n").is_err());
    }
}
