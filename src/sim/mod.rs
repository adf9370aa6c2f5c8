//! The cloud simulator: a faithful emulator of the clouds' wire protocols on loopback, used by
//! `demo`, `sim`, the tests and the benchmarks. It verifies signatures and answers bad ones with
//! the cloud's real error body; enforces page sizes, per-call limits and QPS quotas with the real
//! throttling errors; serves a declarative [`estate::Estate`] whose metric values are the
//! documented function of [`values`]; injects faults on request; and counts every call it serves.
//! It routes by what the real API carries (Aliyun: `x-acs-action` + `x-acs-version`, OSS: its
//! `Authorization` scheme), so one port serves a whole cloud.
//!
//! Control endpoints for the standalone `sim` command: `GET /-/calls` (JSON counts per cloud,
//! account and API: what each exporter replica costs), `POST /-/reset` (zero the counts),
//! `POST /-/faults` with a JSON body
//! `{"api": "cms.DescribeMetricLast", "kind": "throttle", "times": 3}` (`api` optional; kinds
//! `latency` with `"ms"`, `server_error`, `throttle`, `malformed`, `truncated`, `hang`, `auth`).

pub mod aliyun;
pub mod aws;
pub mod estate;
pub mod huawei;
pub mod synthetic;
pub mod tencent;
pub mod values;

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::clock::Clock;
use crate::cloud::Cloud;
use estate::Estate;

/// A fault to inject into the next matching calls.
#[derive(Clone, Debug, PartialEq)]
pub enum FaultKind {
    /// Answer normally after this delay.
    Latency(Duration),
    /// HTTP 503 `ServiceUnavailable`.
    ServerError,
    /// The cloud's throttling error.
    Throttle,
    /// HTTP 200 with a body that is not JSON.
    Malformed,
    /// HTTP 200 with the normal body cut in half.
    Truncated,
    /// Never answer (the client must time out).
    Hang,
    /// Answer as if the credentials were wrong.
    AuthFailure,
}

/// A fault and what it applies to.
#[derive(Clone, Debug, PartialEq)]
pub struct Fault {
    /// API key as counted (`cms.DescribeMetricLast`), `None` = every API.
    pub api: Option<String>,
    /// What to do.
    pub kind: FaultKind,
    /// How many calls it applies to.
    pub times: u32,
}

/// Simulator settings.
#[derive(Clone, Debug)]
pub struct SimSettings {
    /// Calls per second per (account, API) before `Throttling.User` (Aliyun CMS documents 50).
    pub qps_limit: usize,
    /// Seconds after a period ends before its point is available.
    pub ingestion_delay_s: i64,
    /// Fixed latency added to every call.
    pub latency: Duration,
    /// Latency added to the calls of one cloud (over `latency`): a latency model per cloud.
    pub latency_by_cloud: BTreeMap<Cloud, Duration>,
    /// A uniformly random extra latency below this, per call (zero: none).
    pub latency_jitter: Duration,
    /// Instances one Tencent GetMonitorData call may carry (documented: 50).
    pub tencent_max_instances: usize,
    /// Datapoints one AWS GetMetricData page holds before `NextToken` (documented: 100,800).
    pub aws_page_datapoints: usize,
}

impl SimSettings {
    /// The latency of one call to `cloud`: the fixed part, the cloud's, and a random jitter.
    pub fn latency_of(&self, cloud: Cloud) -> Duration {
        let mut l = self.latency
            + self
                .latency_by_cloud
                .get(&cloud)
                .copied()
                .unwrap_or_default();
        if !self.latency_jitter.is_zero() {
            l += self.latency_jitter.mul_f64(fastrand::f64());
        }
        l
    }
}

impl Default for SimSettings {
    fn default() -> Self {
        SimSettings {
            qps_limit: 50,
            ingestion_delay_s: 30,
            latency: Duration::ZERO,
            latency_by_cloud: BTreeMap::new(),
            latency_jitter: Duration::ZERO,
            tencent_max_instances: 50,
            aws_page_datapoints: 100_800,
        }
    }
}

/// Call counts per cloud, account and API.
pub type CallsByAccount = BTreeMap<String, BTreeMap<String, BTreeMap<String, u64>>>;

/// The access key ID a request is signed with, from its `Authorization` header: Aliyun ACS3 and
/// OSS4, Tencent TC3 and AWS SigV4 carry `Credential=AK[/scope]`, Huawei APIG `Access=AK`, COS
/// `q-ak=AK`, OBS `OBS AK:signature`.
pub fn access_key_of(req: &SimRequest) -> Option<&str> {
    let auth = req.header("authorization")?;
    if let Some(rest) = auth.strip_prefix("OBS ") {
        return rest.split(':').next();
    }
    for (marker, ends) in [
        ("Credential=", &['/', ','][..]),
        ("Access=", &[','][..]),
        ("q-ak=", &['&'][..]),
    ] {
        if let Some(i) = auth.find(marker) {
            let rest = &auth[i + marker.len()..];
            return rest.split(ends).next().map(str::trim);
        }
    }
    None
}

/// Shared simulator state.
pub struct SimState {
    /// The estate served.
    pub estate: RwLock<Estate>,
    /// Time source (signature skew checks, datapoint availability).
    pub clock: Clock,
    /// Settings.
    pub settings: SimSettings,
    calls: Mutex<BTreeMap<String, u64>>,
    calls_by_account: Mutex<CallsByAccount>,
    faults: Mutex<Vec<Fault>>,
    quota: Mutex<HashMap<(String, String), VecDeque<std::time::Instant>>>,
    nonces: Mutex<HashSet<String>>,
    /// Keys AWS STS AssumeRole issued.
    pub aws_temporary_keys: aws::TemporaryKeys,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

impl SimState {
    /// State over an estate.
    pub fn new(estate: Estate, clock: Clock, settings: SimSettings) -> SimState {
        SimState {
            estate: RwLock::new(estate),
            clock,
            settings,
            calls: Mutex::new(BTreeMap::new()),
            calls_by_account: Mutex::new(BTreeMap::new()),
            faults: Mutex::new(Vec::new()),
            quota: Mutex::new(HashMap::new()),
            nonces: Mutex::new(HashSet::new()),
            aws_temporary_keys: aws::TemporaryKeys::default(),
        }
    }

    /// A read view of the estate.
    pub fn estate(&self) -> std::sync::RwLockReadGuard<'_, Estate> {
        match self.estate.read() {
            Ok(e) => e,
            Err(p) => p.into_inner(),
        }
    }

    /// Count a call, per API and per cloud, account (by the request's access key) and API.
    pub fn count(&self, cloud: Cloud, req: &SimRequest, api: &str) {
        *lock(&self.calls).entry(api.to_string()).or_insert(0) += 1;
        let account = self.account_of(access_key_of(req).unwrap_or_default());
        *lock(&self.calls_by_account)
            .entry(cloud.as_str().to_string())
            .or_default()
            .entry(account)
            .or_default()
            .entry(api.to_string())
            .or_insert(0) += 1;
    }

    /// The account an access key belongs to (an estate key or an AWS temporary key), else
    /// "unknown".
    fn account_of(&self, access_key_id: &str) -> String {
        if let Some(a) = self
            .estate()
            .accounts
            .iter()
            .find(|a| a.access_key_id == access_key_id)
        {
            return a.account_id.clone();
        }
        match self.aws_temporary_keys.account_of(access_key_id) {
            Some(a) => a,
            None => "unknown".into(),
        }
    }

    /// Calls served per cloud, account and API (`GET /-/calls`).
    pub fn calls_by_account(&self) -> CallsByAccount {
        lock(&self.calls_by_account).clone()
    }

    /// Calls served per API.
    pub fn calls(&self) -> BTreeMap<String, u64> {
        lock(&self.calls).clone()
    }

    /// Calls served to one API.
    pub fn calls_to(&self, api: &str) -> u64 {
        lock(&self.calls).get(api).copied().unwrap_or(0)
    }

    /// All calls served.
    pub fn total_calls(&self) -> u64 {
        lock(&self.calls).values().sum()
    }

    /// Zero the counters.
    pub fn reset_calls(&self) {
        lock(&self.calls).clear();
        lock(&self.calls_by_account).clear();
    }

    /// Add a fault.
    pub fn inject(&self, fault: Fault) {
        lock(&self.faults).push(fault);
    }

    /// Take the fault for a call, if any.
    pub fn take_fault(&self, api: &str) -> Option<FaultKind> {
        let mut faults = lock(&self.faults);
        let pos = faults
            .iter()
            .position(|f| f.times > 0 && f.api.as_deref().is_none_or(|a| a == api))?;
        faults[pos].times -= 1;
        let kind = faults[pos].kind.clone();
        if faults[pos].times == 0 {
            faults.remove(pos);
        }
        Some(kind)
    }

    /// Whether a call of (account, API) is within the per-second quota; records it.
    pub fn within_quota(&self, account: &str, api: &str) -> bool {
        let now = std::time::Instant::now();
        let mut q = lock(&self.quota);
        let window = q.entry((account.to_string(), api.to_string())).or_default();
        while window
            .front()
            .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(1))
        {
            window.pop_front();
        }
        if window.len() >= self.settings.qps_limit {
            return false;
        }
        window.push_back(now);
        true
    }

    /// Record a nonce; false when it was used before.
    pub fn fresh_nonce(&self, nonce: &str) -> bool {
        let mut n = lock(&self.nonces);
        if n.len() > 1_000_000 {
            n.clear();
        }
        n.insert(nonce.to_string())
    }

    /// Remove a resource from the estate.
    pub fn remove_resource(&self, id: &str) -> bool {
        match self.estate.write() {
            Ok(mut e) => e.remove_resource(id),
            Err(p) => p.into_inner().remove_resource(id),
        }
    }
}

/// A running simulator.
pub struct Simulator {
    /// Its state (counters, faults, estate).
    pub state: Arc<SimState>,
    /// Where it listens.
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Simulator {
    /// Serve on a bound listener.
    pub fn serve(listener: TcpListener, state: Arc<SimState>) -> std::io::Result<Simulator> {
        let addr = listener.local_addr()?;
        let st = state.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                };
                let st = st.clone();
                tokio::spawn(async move {
                    let _ = http1::Builder::new()
                        .serve_connection(
                            TokioIo::new(stream),
                            service_fn(move |req| handle(st.clone(), req)),
                        )
                        .await;
                });
            }
        });
        Ok(Simulator { state, addr, task })
    }

    /// Bind `addr` and serve.
    pub async fn start(addr: SocketAddr, state: Arc<SimState>) -> std::io::Result<Simulator> {
        let listener = TcpListener::bind(addr).await?;
        Simulator::serve(listener, state)
    }

    /// Base URL, e.g. `http://127.0.0.1:18080`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stop serving and wait until the listener is closed, so its port is free again.
    pub async fn stop(mut self) {
        self.task.abort();
        let _ = (&mut self.task).await;
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A request as the handlers see it: decoded, body read.
pub struct SimRequest {
    /// HTTP method.
    pub method: String,
    /// Path.
    pub path: String,
    /// Raw query string.
    pub raw_query: String,
    /// Headers, names lower-case.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Bytes,
}

impl SimRequest {
    /// A header value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A simulator answer.
pub struct SimResponse {
    /// Status.
    pub status: u16,
    /// Content type.
    pub content_type: &'static str,
    /// Body.
    pub body: Vec<u8>,
}

impl SimResponse {
    /// JSON answer.
    pub fn json(status: u16, v: &serde_json::Value) -> SimResponse {
        SimResponse {
            status,
            content_type: "application/json;charset=utf-8",
            body: v.to_string().into_bytes(),
        }
    }

    /// XML answer.
    pub fn xml(status: u16, body: String) -> SimResponse {
        SimResponse {
            status,
            content_type: "application/xml",
            body: body.into_bytes(),
        }
    }
}

async fn handle(
    state: Arc<SimState>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = req.into_parts();
    let body = match body.collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => Bytes::new(),
    };
    let sreq = SimRequest {
        method: parts.method.as_str().to_string(),
        path: parts.uri.path().to_string(),
        raw_query: parts.uri.query().unwrap_or("").to_string(),
        headers: parts
            .headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_ascii_lowercase(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body,
    };
    let cloud = if sreq.path.starts_with("/-/") {
        None
    } else if aws::is_aws(&sreq) {
        Some(Cloud::Aws)
    } else if huawei::is_huawei(&sreq) {
        Some(Cloud::Huawei)
    } else if tencent::is_tencent(&sreq) {
        Some(Cloud::Tencent)
    } else {
        Some(Cloud::Aliyun)
    };
    if let Some(c) = cloud {
        let latency = state.settings.latency_of(c);
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
    }
    let resp = match sreq.path.as_str() {
        "/-/calls" => SimResponse::json(200, &serde_json::json!(state.calls_by_account())),
        "/-/reset" if sreq.method == "POST" => {
            state.reset_calls();
            SimResponse::json(200, &serde_json::json!({"reset": true}))
        }
        "/-/faults" if sreq.method == "POST" => match parse_fault(&sreq.body) {
            Ok(f) => {
                state.inject(f);
                SimResponse::json(200, &serde_json::json!({"injected": true}))
            }
            Err(e) => SimResponse::json(400, &serde_json::json!({"error": e})),
        },
        _ => match cloud {
            Some(Cloud::Aws) => aws::handle(&state, &sreq).await,
            Some(Cloud::Huawei) => huawei::handle(&state, &sreq).await,
            Some(Cloud::Tencent) => tencent::handle(&state, &sreq).await,
            _ => aliyun::handle(&state, &sreq).await,
        },
    };
    let mut r = Response::new(Full::new(Bytes::from(resp.body)));
    *r.status_mut() =
        StatusCode::from_u16(resp.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if let Ok(v) = hyper::header::HeaderValue::from_str(resp.content_type) {
        r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    Ok(r)
}

/// A request ID in the 8-4-4-4-12 hex form both clouds use.
pub fn request_id() -> String {
    let h = crate::util::random_hex();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// The `Credential`, `SignedHeaders` and `Signature` fields of an `Authorization` header after
/// its scheme (`Credential=…, SignedHeaders=…, Signature=…`, with or without spaces).
pub fn authorization_fields(rest: &str) -> Option<(&str, &str, &str)> {
    let mut credential = None;
    let mut signed = None;
    let mut signature = None;
    for part in rest.split(',') {
        let part = part.trim();
        if let Some(v) = part.strip_prefix("Credential=") {
            credential = Some(v);
        } else if let Some(v) = part.strip_prefix("SignedHeaders=") {
            signed = Some(v);
        } else if let Some(v) = part.strip_prefix("Signature=") {
            signature = Some(v);
        }
    }
    Some((credential?, signed?, signature?))
}

/// Apply the fault injected for `api`, if any: latency, hangs and truncation are handled here
/// (truncation cuts the normal answer later, in [`truncate_if_asked`]); the faults that answer
/// get the cloud's own body from `answer`.
pub async fn injected_fault(
    state: &SimState,
    api: &str,
    answer: impl Fn(&FaultKind) -> SimResponse,
) -> Option<SimResponse> {
    let kind = state.take_fault(api)?;
    match kind {
        FaultKind::Latency(d) => {
            tokio::time::sleep(d).await;
            None
        }
        FaultKind::Truncated => {
            state.inject(Fault {
                api: Some(format!("{api}#truncate")),
                kind: FaultKind::Truncated,
                times: 1,
            });
            None
        }
        FaultKind::Hang => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            None
        }
        other => Some(answer(&other)),
    }
}

/// Cut the answer in half when a truncation fault was injected for `api`.
pub fn truncate_if_asked(state: &SimState, api: &str, mut resp: SimResponse) -> SimResponse {
    if state.take_fault(&format!("{api}#truncate")).is_some() {
        let half = resp.body.len() / 2;
        resp.body.truncate(half);
    }
    resp
}

/// Parse a `/-/faults` body.
pub fn parse_fault(body: &[u8]) -> Result<Fault, String> {
    let v: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("body is not JSON: {e}"))?;
    let kind = match v.get("kind").and_then(|k| k.as_str()).unwrap_or("") {
        "latency" => FaultKind::Latency(Duration::from_millis(
            v.get("ms").and_then(|m| m.as_u64()).unwrap_or(1000),
        )),
        "server_error" => FaultKind::ServerError,
        "throttle" => FaultKind::Throttle,
        "malformed" => FaultKind::Malformed,
        "truncated" => FaultKind::Truncated,
        "hang" => FaultKind::Hang,
        "auth" => FaultKind::AuthFailure,
        other => return Err(format!("unknown fault kind {other:?}: use latency, server_error, throttle, malformed, truncated, hang or auth")),
    };
    Ok(Fault {
        api: v.get("api").and_then(|a| a.as_str()).map(str::to_string),
        kind,
        times: v
            .get("times")
            .and_then(|t| t.as_u64())
            .unwrap_or(1)
            .min(u64::from(u32::MAX)) as u32,
    })
}

/// Start a simulator over the built-in estate on `addr` with the system clock.
pub async fn start_builtin(addr: SocketAddr) -> std::io::Result<Simulator> {
    let state = Arc::new(SimState::new(
        Estate::builtin(),
        Clock::System,
        SimSettings::default(),
    ));
    Simulator::start(addr, state).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_parse_and_are_consumed_in_order() {
        let f = parse_fault(br#"{"api":"cms.DescribeMetricLast","kind":"throttle","times":2}"#)
            .unwrap();
        assert_eq!(f.kind, FaultKind::Throttle);
        assert!(parse_fault(br#"{"kind":"boom"}"#).is_err());
        let state = SimState::new(Estate::builtin(), Clock::Fixed(0), SimSettings::default());
        state.inject(f);
        assert_eq!(state.take_fault("slb.DescribeRegions"), None);
        assert_eq!(
            state.take_fault("cms.DescribeMetricLast"),
            Some(FaultKind::Throttle)
        );
        assert_eq!(
            state.take_fault("cms.DescribeMetricLast"),
            Some(FaultKind::Throttle)
        );
        assert_eq!(state.take_fault("cms.DescribeMetricLast"), None);
    }

    #[test]
    fn quota_throttles_past_the_limit_per_second() {
        let state = SimState::new(
            Estate::builtin(),
            Clock::Fixed(0),
            SimSettings {
                qps_limit: 3,
                ..SimSettings::default()
            },
        );
        for _ in 0..3 {
            assert!(state.within_quota("a", "cms.DescribeMetricLast"));
        }
        assert!(!state.within_quota("a", "cms.DescribeMetricLast"));
        assert!(state.within_quota("b", "cms.DescribeMetricLast"));
    }
}
