//! The simulated AWS APIs' answers: CloudWatch GetMetricData (JSON 1.0, 500-query limit,
//! values from [`crate::sim::values`] with the query's statistic), ELBv2 and classic ELB
//! listings (Marker paging, 400 a page) and DescribeTags (20 per call), the Resource Groups
//! Tagging API's GetResources (JSON 1.1, 100 a page), EC2 DescribeRegions, STS AssumeRole and
//! S3 ListBuckets / GetBucketLocation / GetBucketTagging.

use serde_json::{json, Value};

use super::super::estate::{Estate, SimAccount, SimResource};
use super::super::{values, SimRequest, SimResponse, SimState};
use crate::cloud::Product;
use crate::util::{fnv1a32, parse_query, random_hex, UtcTime};

/// An error answer: status, code, message.
pub type Failure = (u16, String, String);

fn fail(status: u16, code: &str, message: impl Into<String>) -> Failure {
    (status, code.to_string(), message.into())
}

/// Most queries in one GetMetricData call.
pub const MAX_QUERIES: usize = 500;

/// The ELBv2 kind of a product: (ARN type segment, `Type`).
fn elbv2_kind(product: Product) -> Option<(&'static str, &'static str)> {
    match product {
        Product::Alb => Some(("app", "application")),
        Product::Nlb => Some(("net", "network")),
        Product::Gwlb => Some(("gwy", "gateway")),
        _ => None,
    }
}

/// The CloudWatch `LoadBalancer` dimension of a simulated ELBv2 load balancer:
/// `<app|net|gwy>/<name>/<16 hex>`.
pub fn elbv2_dimension(r: &SimResource) -> Option<String> {
    let (seg, _) = elbv2_kind(r.product()?)?;
    let h = fnv1a32(r.id.as_bytes());
    Some(format!("{seg}/{}/{h:08x}{:08x}", r.id, h.rotate_left(13)))
}

/// The ARN of a simulated ELBv2 load balancer.
pub fn elbv2_arn(account: &SimAccount, r: &SimResource) -> Option<String> {
    Some(format!(
        "arn:aws:elasticloadbalancing:{}:{}:loadbalancer/{}",
        r.region,
        account.account_id,
        elbv2_dimension(r)?
    ))
}

fn xml_response(action: &str, ns: &str, result: &str) -> SimResponse {
    SimResponse::xml(
        200,
        format!(
            "<{action}Response xmlns=\"{ns}\"><{action}Result>{result}</{action}Result><ResponseMetadata><RequestId>{}</RequestId></ResponseMetadata></{action}Response>",
            super::super::request_id()
        ),
    )
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn tags_xml(r: &SimResource) -> String {
    r.tags
        .iter()
        .map(|(k, v)| {
            format!(
                "<member><Key>{}</Key><Value>{}</Value></member>",
                esc(k),
                esc(v)
            )
        })
        .collect()
}

/// ELB and ELBv2 Query actions.
pub fn elb(
    account: &SimAccount,
    region: &str,
    form: &[(String, String)],
) -> Result<SimResponse, Failure> {
    let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let members = |prefix: &str| -> Vec<&str> {
        form.iter()
            .filter(|(k, _)| k.starts_with(prefix))
            .map(|(_, v)| v.as_str())
            .collect()
    };
    let version = get("Version").unwrap_or("");
    let classic = version == "2012-06-01";
    let ns = if classic {
        "http://elasticloadbalancing.amazonaws.com/doc/2012-06-01/"
    } else {
        "http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/"
    };
    let mut lbs: Vec<&SimResource> = account
        .resources
        .iter()
        .filter(|r| r.region == region)
        .filter(|r| match r.product() {
            Some(Product::Clb) => classic,
            Some(p) => !classic && elbv2_kind(p).is_some(),
            None => false,
        })
        .collect();
    lbs.sort_by(|a, b| a.id.cmp(&b.id));
    match get("Action").unwrap_or("") {
        "DescribeLoadBalancers" => {
            let size = match get("PageSize") {
                None => 400,
                Some(s) => match s.parse::<usize>() {
                    Ok(n @ 1..=400) => n,
                    _ => {
                        return Err(fail(
                            400,
                            "ValidationError",
                            "PageSize must be between 1 and 400.",
                        ))
                    }
                },
            };
            let start = match get("Marker") {
                None | Some("") => 0,
                Some(m) => m
                    .strip_prefix("marker-")
                    .and_then(|n| n.parse().ok())
                    .ok_or_else(|| fail(400, "ValidationError", "Invalid Marker."))?,
            };
            let page: Vec<&&SimResource> = lbs.iter().skip(start).take(size).collect();
            let next = if start + size < lbs.len() {
                format!("<NextMarker>marker-{}</NextMarker>", start + size)
            } else {
                String::new()
            };
            let rows: String = page
                .iter()
                .map(|r| {
                    if classic {
                        format!("<member><LoadBalancerName>{}</LoadBalancerName><DNSName>{}.{region}.elb.amazonaws.com</DNSName><VPCId>{}</VPCId><Scheme>internet-facing</Scheme></member>", r.id, r.id, r.vpc())
                    } else {
                        let kind = r.product().and_then(elbv2_kind).map(|k| k.1).unwrap_or("application");
                        format!("<member><LoadBalancerArn>{}</LoadBalancerArn><LoadBalancerName>{}</LoadBalancerName><Scheme>{}</Scheme><VpcId>{}</VpcId><State><Code>active</Code></State><Type>{kind}</Type><IpAddressType>ipv4</IpAddressType></member>",
                            elbv2_arn(account, r).unwrap_or_default(), r.id, if r.internal { "internal" } else { "internet-facing" }, r.vpc())
                    }
                })
                .collect();
            let list = if classic {
                "LoadBalancerDescriptions"
            } else {
                "LoadBalancers"
            };
            Ok(xml_response(
                "DescribeLoadBalancers",
                ns,
                &format!("<{list}>{rows}</{list}>{next}"),
            ))
        }
        "DescribeTags" => {
            let keys = members(if classic {
                "LoadBalancerNames.member."
            } else {
                "ResourceArns.member."
            });
            if keys.len() > 20 {
                return Err(fail(
                    400,
                    "ValidationError",
                    "At most 20 resources per DescribeTags call.",
                ));
            }
            let mut rows = String::new();
            for key in keys {
                let found = lbs.iter().find(|r| {
                    if classic {
                        r.id == key
                    } else {
                        elbv2_arn(account, r).as_deref() == Some(key)
                    }
                });
                let Some(r) = found else {
                    return Err(fail(
                        400,
                        "LoadBalancerNotFound",
                        format!("Load balancer '{key}' not found."),
                    ));
                };
                let field = if classic {
                    "LoadBalancerName"
                } else {
                    "ResourceArn"
                };
                rows.push_str(&format!(
                    "<member><{field}>{key}</{field}><Tags>{}</Tags></member>",
                    tags_xml(r)
                ));
            }
            Ok(xml_response(
                "DescribeTags",
                ns,
                &format!("<TagDescriptions>{rows}</TagDescriptions>"),
            ))
        }
        other => Err(fail(
            400,
            "InvalidAction",
            format!("Could not find operation {other} for version {version}."),
        )),
    }
}

/// The ARN of a simulated load balancer (ELBv2 or classic) or bucket.
fn arn_of(account: &SimAccount, r: &SimResource) -> Option<String> {
    match r.product()? {
        Product::Clb => Some(format!(
            "arn:aws:elasticloadbalancing:{}:{}:loadbalancer/{}",
            r.region, account.account_id, r.id
        )),
        Product::S3 => Some(format!("arn:aws:s3:::{}", r.id)),
        _ => elbv2_arn(account, r),
    }
}

/// Resource Groups Tagging API GetResources: the region's tagged load balancers and buckets,
/// sorted by ARN, `ResourcesPerPage` (1–100, default 50) a page, `PaginationToken` the offset
/// of the next page (empty on the last). Resources without tags are left out, as the API does.
pub fn get_resources(
    account: &SimAccount,
    region: &str,
    body: &[u8],
) -> Result<SimResponse, Failure> {
    let invalid = |m: &str| fail(400, "InvalidParameterException", m);
    let req: Value = serde_json::from_slice(body).map_err(|_| invalid("The body is not JSON."))?;
    let per_page = match req.get("ResourcesPerPage") {
        None => 50,
        Some(v) => match v.as_u64() {
            Some(n @ 1..=100) => n as usize,
            _ => return Err(invalid("ResourcesPerPage must be between 1 and 100.")),
        },
    };
    let filters: Vec<&str> = req
        .get("ResourceTypeFilters")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    // A filter names a service or a service:type.
    let wanted = |p: Product| {
        let names: &[&str] = if p == Product::S3 {
            &["s3", "s3:bucket"]
        } else {
            &["elasticloadbalancing", "elasticloadbalancing:loadbalancer"]
        };
        filters.is_empty() || filters.iter().any(|f| names.contains(f))
    };
    let mut tagged: Vec<(String, &SimResource)> = account
        .resources
        .iter()
        .filter(|r| r.region == region && !r.tags.is_empty())
        .filter(|r| r.product().is_some_and(wanted))
        .filter_map(|r| Some((arn_of(account, r)?, r)))
        .collect();
    tagged.sort_by(|a, b| a.0.cmp(&b.0));
    let start = match req.get("PaginationToken").and_then(Value::as_str) {
        None | Some("") => 0,
        Some(t) => t
            .parse::<usize>()
            .ok()
            .filter(|&s| s <= tagged.len())
            .ok_or_else(|| {
                fail(
                    400,
                    "PaginationTokenExpiredException",
                    "The token is not valid.",
                )
            })?,
    };
    let end = (start + per_page).min(tagged.len());
    let list: Vec<Value> = tagged[start..end]
        .iter()
        .map(|(arn, r)| {
            let tags: Vec<Value> = r
                .tags
                .iter()
                .map(|(k, v)| json!({"Key": k, "Value": v}))
                .collect();
            json!({"ResourceARN": arn, "Tags": tags})
        })
        .collect();
    let token = if end < tagged.len() {
        end.to_string()
    } else {
        String::new()
    };
    Ok(SimResponse::json(
        200,
        &json!({"PaginationToken": token, "ResourceTagMappingList": list}),
    ))
}

/// EC2 DescribeRegions (its own XML shape: `regionInfo/item`).
pub fn describe_regions(estate: &Estate) -> Result<SimResponse, Failure> {
    let items: String = estate
        .aws_regions
        .iter()
        .map(|r| format!("<item><regionName>{r}</regionName><regionEndpoint>ec2.{r}.amazonaws.com</regionEndpoint><optInStatus>opt-in-not-required</optInStatus></item>"))
        .collect();
    Ok(SimResponse::xml(
        200,
        format!("<DescribeRegionsResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\"><requestId>{}</requestId><regionInfo>{items}</regionInfo></DescribeRegionsResponse>", super::super::request_id()),
    ))
}

/// STS AssumeRole: temporary keys for the role's account, valid for DurationSeconds.
pub fn assume_role(
    state: &SimState,
    estate: &Estate,
    form: &[(String, String)],
) -> Result<SimResponse, Failure> {
    let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let arn = get("RoleArn").ok_or_else(|| fail(400, "ValidationError", "RoleArn is required."))?;
    // arn:aws:iam::<account>:role/<name>
    let account = arn.split(':').nth(4).unwrap_or("");
    if !estate.accounts.iter().any(|a| a.account_id == account) || !arn.contains(":role/") {
        return Err(fail(
            403,
            "AccessDenied",
            format!("Not authorized to perform sts:AssumeRole on {arn}."),
        ));
    }
    let duration: i64 = get("DurationSeconds")
        .and_then(|d| d.parse().ok())
        .unwrap_or(3600);
    let ak = format!("ASIASIM{}", &random_hex()[..13].to_uppercase());
    let secret = random_hex();
    let token = format!("SIMTOKEN{}", random_hex());
    state.aws_temporary_keys.insert(
        ak.clone(),
        account.to_string(),
        secret.clone(),
        token.clone(),
    );
    let expires = UtcTime::from_unix(state.clock.now_s() + duration).iso8601();
    Ok(xml_response(
        "AssumeRole",
        "https://sts.amazonaws.com/doc/2011-06-15/",
        &format!("<Credentials><AccessKeyId>{ak}</AccessKeyId><SecretAccessKey>{secret}</SecretAccessKey><SessionToken>{token}</SessionToken><Expiration>{expires}</Expiration></Credentials><AssumedRoleUser><Arn>{arn}/multicloud-exporter</Arn></AssumedRoleUser>"),
    ))
}

/// S3 ListBuckets (with BucketRegion, as the paged API answers), GetBucketLocation and
/// GetBucketTagging (404 NoSuchTagSet without tags).
pub fn s3(account: &SimAccount, req: &SimRequest) -> Result<SimResponse, Failure> {
    let q = parse_query(&req.raw_query);
    let buckets: Vec<&SimResource> = {
        let mut b: Vec<&SimResource> = account
            .resources
            .iter()
            .filter(|r| r.product() == Some(Product::S3))
            .collect();
        b.sort_by(|a, b| a.id.cmp(&b.id));
        b
    };
    if req.path == "/" {
        let rows: String = buckets
            .iter()
            .map(|b| format!("<Bucket><Name>{}</Name><CreationDate>2024-06-01T10:00:00.000Z</CreationDate><BucketRegion>{}</BucketRegion></Bucket>", b.id, b.region))
            .collect();
        return Ok(SimResponse::xml(200, format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListAllMyBucketsResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Owner><ID>{}</ID><DisplayName>sim</DisplayName></Owner><Buckets>{rows}</Buckets></ListAllMyBucketsResult>", account.account_id)));
    }
    let name = req.path.trim_start_matches('/').trim_end_matches('/');
    let Some(b) = buckets.iter().find(|b| b.id == name) else {
        return Err(fail(
            404,
            "NoSuchBucket",
            "The specified bucket does not exist",
        ));
    };
    let has = |k: &str| q.iter().any(|(n, _)| n == k);
    if has("location") {
        let loc = if b.region == "us-east-1" {
            String::new()
        } else {
            b.region.clone()
        };
        return Ok(SimResponse::xml(200, format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<LocationConstraint xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">{loc}</LocationConstraint>")));
    }
    if has("tagging") {
        if b.tags.is_empty() {
            return Err(fail(404, "NoSuchTagSet", "The TagSet does not exist"));
        }
        let tags: String = b
            .tags
            .iter()
            .map(|(k, v)| format!("<Tag><Key>{}</Key><Value>{}</Value></Tag>", esc(k), esc(v)))
            .collect();
        return Ok(SimResponse::xml(200, format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Tagging xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><TagSet>{tags}</TagSet></Tagging>")));
    }
    Err(fail(
        400,
        "NotImplemented",
        "The simulator serves ListBuckets, GetBucketLocation and GetBucketTagging.",
    ))
}

/// The simulated resource a CloudWatch query names, and the `extra` of its values (the fixed
/// dimensions beyond the resource's, e.g. S3 `StorageType`).
fn query_resource<'a>(
    account: &'a SimAccount,
    region: &str,
    ns: &str,
    dims: &[(String, String)],
) -> Option<(&'a SimResource, String)> {
    let get = |k: &str| dims.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let (product, key) = match ns {
        "AWS/ApplicationELB" => (Product::Alb, "LoadBalancer"),
        "AWS/NetworkELB" => (Product::Nlb, "LoadBalancer"),
        "AWS/GatewayELB" => (Product::Gwlb, "LoadBalancer"),
        "AWS/ELB" => (Product::Clb, "LoadBalancerName"),
        "AWS/S3" => (Product::S3, "BucketName"),
        _ => return None,
    };
    let want = get(key)?;
    let r = account.resources.iter().find(|r| {
        r.product() == Some(product)
            && r.region == region
            && match product {
                Product::Clb | Product::S3 => r.id == want,
                _ => elbv2_dimension(r).as_deref() == Some(want),
            }
    })?;
    let extra: Vec<&str> = dims
        .iter()
        .filter(|(n, _)| n != key)
        .map(|(_, v)| v.as_str())
        .collect();
    Some((r, extra.join("|")))
}

/// CloudWatch GetMetricData (JSON 1.0).
pub fn get_metric_data(
    state: &SimState,
    account: &SimAccount,
    region: &str,
    body: &[u8],
) -> Result<SimResponse, Failure> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|_| fail(400, "SerializationException", "The body is not JSON."))?;
    let queries = v
        .get("MetricDataQueries")
        .and_then(Value::as_array)
        .ok_or_else(|| fail(400, "ValidationError", "MetricDataQueries is required."))?;
    if queries.len() > MAX_QUERIES {
        return Err(fail(
            400,
            "ValidationError",
            format!(
                "The collection MetricDataQueries must not have a size greater than {MAX_QUERIES}."
            ),
        ));
    }
    let time = |k: &str| v.get(k).and_then(Value::as_f64).map(|t| t as i64);
    let (Some(start), Some(end)) = (time("StartTime"), time("EndTime")) else {
        return Err(fail(
            400,
            "ValidationError",
            "StartTime and EndTime are required.",
        ));
    };
    let now = state.clock.now_s();
    // Pages hold whole queries up to the datapoint limit; NextToken names the next query.
    let first = match v.get("NextToken").and_then(Value::as_str) {
        None => 0,
        Some(t) => t
            .strip_prefix("q-")
            .and_then(|n| n.parse::<usize>().ok())
            .filter(|n| *n < queries.len())
            .ok_or_else(|| fail(400, "InvalidNextToken", "The NextToken is not valid."))?,
    };
    let mut results = Vec::new();
    let mut datapoints = 0usize;
    let mut next = None;
    for (n, q) in queries.iter().enumerate().skip(first) {
        let id = q.get("Id").and_then(Value::as_str).unwrap_or("");
        if !id.starts_with(|c: char| c.is_ascii_lowercase()) {
            return Err(fail(
                400,
                "ValidationError",
                "Query Id must start with a lowercase letter.",
            ));
        }
        let stat = q
            .pointer("/MetricStat/Stat")
            .and_then(Value::as_str)
            .unwrap_or("");
        let period = q
            .pointer("/MetricStat/Period")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        if period == 0 || period % 60 != 0 {
            return Err(fail(
                400,
                "ValidationError",
                "Period must be a multiple of 60.",
            ));
        }
        let ns = q
            .pointer("/MetricStat/Metric/Namespace")
            .and_then(Value::as_str)
            .unwrap_or("");
        let metric = q
            .pointer("/MetricStat/Metric/MetricName")
            .and_then(Value::as_str)
            .unwrap_or("");
        let dims: Vec<(String, String)> = q
            .pointer("/MetricStat/Metric/Dimensions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|d| {
                Some((
                    d.get("Name")?.as_str()?.to_string(),
                    d.get("Value")?.as_str()?.to_string(),
                ))
            })
            .collect();
        let p = period as i64;
        let mut timestamps = Vec::new();
        let mut vals = Vec::new();
        if let Some((r, extra)) = query_resource(account, region, ns, &dims) {
            // Newest first (TimestampDescending); available once ended and ingested.
            let mut t = (end - 1).div_euclid(p) * p;
            while t >= start {
                if t + p + state.settings.ingestion_delay_s <= now {
                    let raw = values::raw_value(&r.id, metric, &extra, t, period, false);
                    if let Some(x) = values::statistic(raw, stat, period) {
                        timestamps.push(json!(t));
                        vals.push(json!(x));
                    }
                }
                t -= p;
            }
        }
        if datapoints > 0 && datapoints + timestamps.len() > state.settings.aws_page_datapoints {
            next = Some(format!("q-{n}"));
            break;
        }
        datapoints += timestamps.len();
        results.push(json!({"Id": id, "Label": metric, "Timestamps": timestamps, "Values": vals, "StatusCode": "Complete"}));
    }
    let mut answer = json!({"MetricDataResults": results, "Messages": []});
    if let Some(t) = next {
        answer["NextToken"] = json!(t);
    }
    Ok(SimResponse {
        status: 200,
        content_type: "application/x-amz-json-1.0",
        body: answer.to_string().into_bytes(),
    })
}
