//! Huawei Cloud: JSON calls signed with `SDK-HMAC-SHA256` (CES, ELB v3, IAM), OBS calls signed
//! with OBS's own scheme, project IDs per region (configured, or looked up once through IAM),
//! error classification by HTTP status and `error_code`, and the provider operations built on
//! them: regions and resources ([`discovery`]) and monitor data ([`ces`]).

pub mod ces;
pub mod discovery;
pub mod sign;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::time::Instant;

use super::http::{self, CallSite, Shared};
use super::{Cloud, CloudError, ErrorClass};
use crate::config::{AccountConfig, Secret};
use crate::discovery::TtlCache;
use crate::util::{encode_query, host_of, value_string, UtcTime};

/// The Huawei provider of one account.
pub struct HuaweiProvider {
    shared: Shared,
    account_id: String,
    ak: String,
    sk: Secret,
    token: Option<Secret>,
    endpoint: Option<String>,
    endpoints: BTreeMap<String, String>,
    project_ids: BTreeMap<String, String>,
    /// Every project IAM lists for the account, name → ID (24 h): one call for all regions, and
    /// a region without a project costs no IAM call every scrape.
    projects: TtlCache<(), Arc<BTreeMap<String, String>>>,
    /// The account's buckets with their regions (one OBS listing answers for all regions).
    buckets: TtlCache<(), Arc<Vec<(String, String)>>>,
}

impl HuaweiProvider {
    /// The provider of an account.
    pub fn new(
        account: &AccountConfig,
        shared: &Shared,
        discovery_ttl: std::time::Duration,
    ) -> HuaweiProvider {
        HuaweiProvider {
            shared: shared.for_account(account),
            account_id: account.account_id.clone(),
            ak: account.access_key_id.clone(),
            sk: account.access_key_secret.clone(),
            token: account.security_token.clone(),
            endpoint: account.endpoint.clone(),
            endpoints: account.endpoints.clone(),
            project_ids: account.project_ids.clone(),
            projects: TtlCache::new("huawei_projects", 1, super::aliyun::METADATA_TTL),
            buckets: TtlCache::new("huawei_buckets", 1, discovery_ttl),
        }
    }

    /// Base URL of a service in a region (IAM is global).
    pub fn base_url(&self, service: &str, region: &str) -> String {
        if let Some(u) = self.endpoints.get(service).or(self.endpoint.as_ref()) {
            return u.clone();
        }
        match service {
            "iam" => "https://iam.myhuaweicloud.com".to_string(),
            other => format!("https://{other}.{region}.myhuaweicloud.com"),
        }
    }

    /// Whether OBS bucket calls go path-style to one configured URL.
    pub fn obs_path_style(&self) -> bool {
        self.endpoints.contains_key("obs") || self.endpoint.is_some()
    }

    /// The account ID (domain ID).
    pub fn account_id(&self) -> &str {
        &self.account_id
    }

    /// Shared state.
    pub fn shared(&self) -> &Shared {
        &self.shared
    }

    /// The project ID of a region: configured, or from IAM `GET /v3/projects`, which lists every
    /// region's project in one call (cached 24 h, a region without a project included).
    pub async fn project_id(&self, region: &str, deadline: Instant) -> Result<String, CloudError> {
        if let Some(id) = self.project_ids.get(region) {
            return Ok(id.clone());
        }
        let projects = self
            .projects
            .get_or_fetch((), || async {
                let v = self
                    .call(
                        "KeystoneListProjects",
                        "iam",
                        "",
                        reqwest::Method::GET,
                        "/v3/projects",
                        &[],
                        None,
                        deadline,
                    )
                    .await?;
                let by_name: BTreeMap<String, String> = v
                    .get("projects")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|p| {
                        let id = p.get("id").map(value_string).filter(|id| !id.is_empty())?;
                        Some((p.get("name").map(value_string)?, id))
                    })
                    .collect();
                Ok(Arc::new(by_name))
            })
            .await?;
        projects.get(region).cloned().ok_or_else(|| CloudError {
            http_status: Some(200),
            ..CallSite {
                cloud: Cloud::Huawei,
                api: "KeystoneListProjects",
                region,
            }
            .error(
                ErrorClass::RegionSkip,
                format!("IAM lists no project named {region}: set accounts[].project_ids.{region}"),
            )
        })
    }

    /// The account's buckets as (name, region), listed once per discovery TTL.
    pub async fn buckets(
        &self,
        region: &str,
        deadline: Instant,
    ) -> Result<Arc<Vec<(String, String)>>, CloudError> {
        self.buckets
            .get_or_fetch_fresh((), || async {
                discovery::list_buckets(self, region, deadline)
                    .await
                    .map(Arc::new)
            })
            .await
    }

    /// A signed JSON call; the answer's object on success.
    #[allow(clippy::too_many_arguments)]
    pub async fn call(
        &self,
        api: &'static str,
        service: &str,
        region: &str,
        method: reqwest::Method,
        path: &str,
        query: &[(String, String)],
        body: Option<&Value>,
        deadline: Instant,
    ) -> Result<Value, CloudError> {
        let payload = body.map(|b| b.to_string().into_bytes());
        let call = JsonCall {
            api,
            service,
            region,
            method,
            path,
            query,
        };
        self.send_json(call, payload, deadline, parse_answer).await
    }

    /// A signed JSON POST of a serialised body; the answer parsed straight into `T`.
    pub async fn post_as<T: DeserializeOwned>(
        &self,
        api: &'static str,
        service: &str,
        region: &str,
        path: &str,
        payload: Vec<u8>,
        deadline: Instant,
    ) -> Result<T, CloudError> {
        let call = JsonCall {
            api,
            service,
            region,
            method: reqwest::Method::POST,
            path,
            query: &[],
        };
        self.send_json(call, Some(payload), deadline, parse_answer_as::<T>)
            .await
    }

    /// Sign and send a JSON call (with the limiter and retries), its answer read by `parse`.
    async fn send_json<T>(
        &self,
        call: JsonCall<'_>,
        body: Option<Vec<u8>>,
        deadline: Instant,
        parse: fn(CallSite<'_>, u16, &[u8]) -> Result<T, CloudError>,
    ) -> Result<T, CloudError> {
        let JsonCall {
            api,
            service,
            region,
            method,
            path,
            query,
        } = call;
        let site = CallSite {
            cloud: Cloud::Huawei,
            api,
            region,
        };
        let has_body = body.is_some();
        // Shared, not copied, by every attempt.
        let payload = bytes::Bytes::from(body.unwrap_or_default());
        http::call(&self.shared, site, &self.account_id, deadline, || async {
            let base = self.base_url(service, region);
            let date = UtcTime::from_unix(self.shared.clock.now_s()).basic();
            let mut headers = vec![
                ("host".to_string(), host_of(&base)),
                ("x-sdk-date".to_string(), date.clone()),
            ];
            if has_body {
                headers.push((
                    "content-type".to_string(),
                    "application/json;charset=UTF-8".to_string(),
                ));
            }
            // Project-scoped APIs carry (and sign) their project, as the SDK does: API Gateway
            // needs it for sub-projects.
            if matches!(service, "ces" | "elb") {
                if let Some(project) = path.split('/').nth(2).filter(|p| !p.is_empty()) {
                    headers.push(("x-project-id".to_string(), project.to_string()));
                }
            }
            if let Some(t) = &self.token {
                headers.push(("x-security-token".to_string(), t.expose().to_string()));
            }
            let auth = sign::authorization(
                &sign::SdkRequest {
                    method: method.as_str(),
                    path,
                    query,
                    headers: &headers,
                    body: &payload,
                },
                &date,
                &self.ak,
                self.sk.expose(),
            );
            let mut url = format!("{base}{path}");
            if !query.is_empty() {
                url.push('?');
                url.push_str(&encode_query(query));
            }
            let mut req = self
                .shared
                .client
                .request(method.clone(), url)
                .header("authorization", auth)
                .body(payload.clone());
            for (k, v) in headers.iter().filter(|(k, _)| k != "host") {
                req = req.header(k.as_str(), v.as_str());
            }
            let raw = http::send(&self.shared, site, deadline, req).await?;
            parse(site, raw.status, &raw.body)
        })
        .await
    }

    /// A signed OBS GET (`bucket` None = the service); the body on 2xx, `None` on 404.
    pub async fn obs_get(
        &self,
        api: &'static str,
        region: &str,
        bucket: Option<&str>,
        subresource: Option<&str>,
        extra_headers: &[(String, String)],
        deadline: Instant,
    ) -> Result<Option<bytes::Bytes>, CloudError> {
        let site = CallSite {
            cloud: Cloud::Huawei,
            api,
            region,
        };
        http::call(&self.shared, site, &self.account_id, deadline, || async {
            let date = httpdate(self.shared.clock.now_s());
            // esdk-obs: the bucket's trailing `/` only on its virtual host.
            let slash = if self.obs_path_style() { "" } else { "/" };
            let resource = match (bucket, subresource) {
                (Some(b), Some(s)) => format!("/{b}{slash}?{s}"),
                (Some(b), None) => format!("/{b}{slash}"),
                (None, _) => "/".to_string(),
            };
            let mut obs_headers = extra_headers.to_vec();
            if let Some(t) = &self.token {
                obs_headers.push(("x-obs-security-token".to_string(), t.expose().to_string()));
            }
            let auth = sign::obs_authorization(
                &sign::ObsRequest {
                    method: "GET",
                    content_md5: "",
                    content_type: "",
                    date: &date,
                    obs_headers: &obs_headers,
                    resource: &resource,
                },
                &self.ak,
                self.sk.expose(),
            );
            let query = subresource.map(|s| format!("?{s}")).unwrap_or_default();
            let url = match bucket {
                Some(b) if self.obs_path_style() => {
                    format!("{}/{b}{query}", self.base_url("obs", region))
                }
                Some(b) => format!("https://{b}.obs.{region}.myhuaweicloud.com/{query}"),
                None => format!("{}/", self.base_url("obs", region)),
            };
            let mut req = self
                .shared
                .client
                .get(url)
                .header("authorization", auth)
                .header("date", date);
            for (k, v) in &obs_headers {
                req = req.header(k.as_str(), v.as_str());
            }
            let raw = http::send(&self.shared, site, deadline, req).await?;
            if raw.status == 404 {
                return Ok(None);
            }
            if (200..300).contains(&raw.status) {
                return Ok(Some(raw.body));
            }
            Err(super::buckets::xml_answer_error(
                site, raw.status, &raw.body, classify,
            ))
        })
        .await
    }
}

/// An RFC 1123 date (`Wed, 01 Jan 2025 00:10:30 GMT`), as OBS signs it.
pub fn httpdate(unix_s: i64) -> String {
    let t = UtcTime::from_unix(unix_s);
    let days = unix_s.div_euclid(86_400);
    // 1970-01-01 was a Thursday.
    let weekday = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][days.rem_euclid(7) as usize];
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ][(t.month as usize).clamp(1, 12) - 1];
    let iso = t.iso8601();
    format!(
        "{weekday}, {} {month} {} {} GMT",
        &iso[8..10],
        t.year,
        &iso[11..19]
    )
}

/// Classify by the API's code and the HTTP status (`cloud-apis.md` D.2).
pub fn classify(code: &str, status: u16) -> ErrorClass {
    if status == 429 || code == "ces.0429" || code.ends_with(".0429") || code == "SlowDown" {
        ErrorClass::LimitError
    } else if status == 401
        || status == 403
        || code.starts_with("APIGW.03")
        || code == "SignatureDoesNotMatch"
        || code == "InvalidAccessKeyId"
        || code == "AccessDenied"
    {
        ErrorClass::AuthError
    } else if status >= 500 {
        ErrorClass::ServerError
    } else {
        ErrorClass::BadResponse
    }
}

/// What a JSON call is sent to.
struct JsonCall<'a> {
    api: &'static str,
    service: &'a str,
    region: &'a str,
    method: reqwest::Method,
    path: &'a str,
    query: &'a [(String, String)],
}

/// A success answer parsed straight from its bytes as `T`; anything else as [`parse_answer`].
pub fn parse_answer_as<T: DeserializeOwned>(
    site: CallSite<'_>,
    status: u16,
    body: &[u8],
) -> Result<T, CloudError> {
    if (200..300).contains(&status) && crate::cloud::wire::is_json_object(body) {
        if let Ok(t) = serde_json::from_slice::<T>(body) {
            return Ok(t);
        }
    }
    let v = parse_answer(site, status, body)?;
    T::deserialize(v).map_err(|e| site.shape_error(status, e))
}

/// Turn an answer into its JSON object or a classified error: `{"error_code", "error_msg"}`
/// (API Gateway, ELB, IAM) or CES's `{"http_code", "message": {"code", "details"}}`.
pub fn parse_answer(site: CallSite<'_>, status: u16, body: &[u8]) -> Result<Value, CloudError> {
    let parsed: Result<Value, _> = serde_json::from_slice(body);
    if (200..300).contains(&status) {
        return match parsed {
            Ok(v) if v.is_object() => Ok(v),
            Ok(_) => Err(site.error(ErrorClass::BadResponse, "answer is not a JSON object")),
            Err(e) => Err(CloudError {
                http_status: Some(status),
                ..site.error(
                    ErrorClass::BadResponse,
                    format!("answer is not valid JSON: {e}"),
                )
            }),
        };
    }
    let v = parsed.unwrap_or(Value::Null);
    let code = v
        .get("error_code")
        .or_else(|| v.pointer("/message/code"))
        .or_else(|| v.pointer("/error/code"))
        .map(value_string)
        .filter(|c| !c.is_empty());
    let message: String = v
        .get("error_msg")
        .or_else(|| v.pointer("/message/details"))
        .or_else(|| v.pointer("/error/message"))
        .map(value_string)
        .unwrap_or_else(|| format!("HTTP {status}"))
        .lines()
        .next()
        .unwrap_or("")
        .chars()
        .take(300)
        .collect();
    Err(CloudError {
        http_status: Some(status),
        code: code.clone(),
        request_id: v.get("request_id").map(value_string),
        ..site.error(classify(code.as_deref().unwrap_or(""), status), message)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SITE: CallSite<'static> = CallSite {
        cloud: Cloud::Huawei,
        api: "BatchListMetricData",
        region: "cn-north-4",
    };

    #[test]
    fn errors_are_classified_by_status_and_code() {
        let e = parse_answer(SITE, 429, br#"{"http_code":429,"message":{"details":"Too Many Requests.","code":"ces.0429"},"encoded_authorization_message":null}"#).unwrap_err();
        assert_eq!(e.class, ErrorClass::LimitError);
        assert_eq!(e.code.as_deref(), Some("ces.0429"));
        let e = parse_answer(SITE, 401, br#"{"error_msg":"Incorrect IAM authentication information: verify aksk signature fail","error_code":"APIGW.0301","request_id":"r1"}"#).unwrap_err();
        assert_eq!(e.class, ErrorClass::AuthError);
        assert_eq!(e.request_id.as_deref(), Some("r1"));
        assert_eq!(
            parse_answer(SITE, 503, b"<html/>").unwrap_err().class,
            ErrorClass::ServerError
        );
        assert_eq!(
            parse_answer(SITE, 400, br#"{"error_code":"ces.0014","error_msg":"bad"}"#)
                .unwrap_err()
                .class,
            ErrorClass::BadResponse
        );
    }

    #[test]
    fn http_dates_are_rfc_1123() {
        assert_eq!(httpdate(1_735_690_230), "Wed, 01 Jan 2025 00:10:30 GMT");
        assert_eq!(httpdate(0), "Thu, 01 Jan 1970 00:00:00 GMT");
    }
}
