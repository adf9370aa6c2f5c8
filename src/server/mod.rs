//! The HTTP server (hyper 1): `/metrics`, `/healthz`, `/-/ready` and a landing page. It takes a
//! bound listener (tests bind `127.0.0.1:0`), caps concurrent connections (more wait in the
//! accept queue instead of failing), times out slow request headers, and shuts down gracefully:
//! connections in flight finish, new ones are refused.

pub mod admin;
pub mod auth;
pub mod exposition;
pub mod web;

use std::convert::Infallible;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use crate::reload::Reloader;
use crate::scrape::Collector;
use web::{WebConfig, WebSettings};

/// Prometheus text exposition content type.
pub const EXPOSITION_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// What the routes need.
pub struct ServerState {
    /// The collection entry point.
    pub collector: Collector,
    /// Set once the exporter can serve scrapes.
    pub ready: AtomicBool,
    /// Reloads the config (`POST /-/reload`); `None` when the runtime came from no file.
    pub reloader: Option<Arc<Reloader>>,
    /// TLS, BasicAuth and headers from `--web.config.file`.
    pub web: Option<Arc<WebConfig>>,
}

impl ServerState {
    /// State around a collector, ready.
    pub fn new(collector: Collector) -> Arc<ServerState> {
        Arc::new(ServerState {
            collector,
            ready: AtomicBool::new(true),
            reloader: None,
            web: None,
        })
    }

    /// State around a collector whose config `reloader` reloads, served with the settings of
    /// a web config file.
    pub fn with_reloader(
        collector: Collector,
        reloader: Option<Arc<Reloader>>,
        web: Option<Arc<WebConfig>>,
    ) -> Arc<ServerState> {
        Arc::new(ServerState {
            collector,
            ready: AtomicBool::new(true),
            reloader,
            web,
        })
    }
}

const JSON: &str = "application/json";

/// The body of every answer: whole for the small ones, streamed for `/metrics`.
pub type Body = http_body_util::combinators::UnsyncBoxBody<Bytes, Infallible>;

fn method_not_allowed() -> Response<Body> {
    text(
        StatusCode::METHOD_NOT_ALLOWED,
        "text/plain; charset=utf-8",
        "method not allowed\n",
    )
}

fn not_found() -> Response<Body> {
    text(
        StatusCode::NOT_FOUND,
        "text/plain; charset=utf-8",
        "not found\n",
    )
}

fn json_response(status: StatusCode, v: &serde_json::Value) -> Response<Body> {
    let mut body = serde_json::to_vec_pretty(v).unwrap_or_default();
    body.push(b'\n');
    text(status, JSON, body)
}

/// The admin routes: off unless `[server.admin_auth] enabled`, always behind BasicAuth.
async fn admin_route(
    state: &ServerState,
    method: &Method,
    path: &str,
    query: &str,
    authorization: Option<&str>,
) -> Response<Body> {
    let rt = state.collector.runtime();
    let Some(auth) = rt.admin.clone() else {
        return text(
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            "the admin API is off: enable it with [server.admin_auth] enabled = true and users with bcrypt hashes\n",
        );
    };
    if !auth.allows(authorization).await {
        return unauthorized("multicloud-exporter admin");
    }
    let bad_request =
        |e: String| json_response(StatusCode::BAD_REQUEST, &serde_json::json!({ "error": e }));
    match (method, path) {
        (&Method::GET, "/api/discovery/status") => match admin::filter_from_query(query) {
            Ok(f) => json_response(
                StatusCode::OK,
                &admin::discovery_status(&rt, &f, state.collector.last_collection()).await,
            ),
            Err(e) => bad_request(e),
        },
        (&Method::GET, "/api/discovery/resources") => match admin::filter_from_query(query) {
            Ok(f) => json_response(StatusCode::OK, &admin::discovery_resources(&rt, &f).await),
            Err(e) => bad_request(e),
        },
        (&Method::GET, "/api/cluster") => json_response(StatusCode::OK, &admin::cluster(&rt).await),
        (&Method::POST, "/-/reload") => match &state.reloader {
            None => text(
                StatusCode::SERVICE_UNAVAILABLE,
                "text/plain; charset=utf-8",
                "this exporter was not started from a config file; nothing to reload\n",
            ),
            // In its own task: a client hanging up does not abandon a reload half done.
            Some(r) => match tokio::spawn({
                let r = r.clone();
                async move { r.reload("http").await }
            })
            .await
            .unwrap_or_else(|e| Err(vec![format!("the reload stopped: {e}")]))
            {
                Ok(report) => {
                    let mut v = serde_json::to_value(&report).unwrap_or_default();
                    v["status"] = "success".into();
                    json_response(StatusCode::OK, &v)
                }
                Err(errors) => json_response(
                    StatusCode::BAD_REQUEST,
                    &serde_json::json!({ "status": "error", "errors": errors }),
                ),
            },
        },
        (
            _,
            "/api/discovery/status" | "/api/discovery/resources" | "/api/cluster" | "/-/reload",
        ) => method_not_allowed(),
        _ => not_found(),
    }
}

/// The deadline of a scrape: the Prometheus scrape-timeout header (if any) capped by
/// `server.scrape_timeout`, minus a margin (10 %, at most 1 s) to encode and send the answer.
pub fn scrape_deadline(header: Option<&str>, configured: Duration, now: Instant) -> Instant {
    let requested = header
        .and_then(|h| h.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0)
        .map(|s| Duration::from_secs_f64(s.min(configured.as_secs_f64())));
    let timeout = requested.map_or(configured, |r| r.min(configured));
    let margin = (timeout / 10).min(Duration::from_secs(1));
    now + (timeout - margin)
}

fn text(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Response<Body> {
    let mut r = Response::new(Full::new(body.into()).boxed_unsync());
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

/// Whether the request's `Accept-Encoding` allows gzip (Prometheus always sends it).
pub fn accepts_gzip(headers: &hyper::HeaderMap) -> bool {
    headers
        .get_all(hyper::header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|enc| {
            let mut parts = enc.split(';');
            let name = parts.next().unwrap_or("").trim();
            let refused = parts.any(|p| p.trim().replace(' ', "") == "q=0");
            name.eq_ignore_ascii_case("gzip") && !refused
        })
}

const LANDING: &str = r#"<!DOCTYPE html>
<html><head><title>multicloud-exporter</title></head>
<body><h1>multicloud-exporter</h1>
<p>The clouds' own monitoring data (Aliyun CloudMonitor, Tencent Cloud Monitor, AWS CloudWatch, Huawei Cloud Eye) as Prometheus metrics.</p>
<ul>
<li><a href="/metrics">/metrics</a> — the exposition (collects on scrape)</li>
<li><a href="/healthz">/healthz</a> — liveness (never calls a cloud)</li>
<li><a href="/-/ready">/-/ready</a> — readiness</li>
</ul></body></html>
"#;

/// Answer a request under the web config's BasicAuth and headers, as they are now (a user
/// removed from the file is refused on a connection opened before).
async fn route(
    state: Arc<ServerState>,
    req: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let web: Option<Arc<WebSettings>> = match state.web.as_ref().map(|w| w.current()) {
        None => None,
        Some(Ok(settings)) => Some(settings),
        Some(Err(_)) => {
            return Ok(text(
                StatusCode::SERVICE_UNAVAILABLE,
                "text/plain; charset=utf-8",
                "the web config does not load; see the exporter's log\n",
            ))
        }
    };
    let path = req.uri().path();
    let admin = path.starts_with("/api/") || path == "/-/reload";
    let probe = matches!(path, "/healthz" | "/-/ready");
    // The admin routes check their own users ([server.admin_auth]); probes may be exempt.
    let exempt = admin || (probe && state.collector.runtime().config.server.probes_without_auth);
    let mut resp = match web.as_ref().and_then(|w| w.basic_auth.clone()) {
        Some(auth) if !exempt => {
            let authorization = req
                .headers()
                .get(hyper::header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok());
            if auth.allows(authorization).await {
                answer(&state, req).await
            } else {
                unauthorized("multicloud-exporter")
            }
        }
        _ => answer(&state, req).await,
    };
    if let Some(w) = &web {
        for (name, value) in &w.headers {
            resp.headers_mut().insert(name.clone(), value.clone());
        }
    }
    Ok(resp)
}

fn unauthorized(realm: &'static str) -> Response<Body> {
    let mut r = text(
        StatusCode::UNAUTHORIZED,
        "text/plain; charset=utf-8",
        "unauthorized\n",
    );
    if let Ok(v) = HeaderValue::from_str(&format!("Basic realm=\"{realm}\"")) {
        r.headers_mut().insert(hyper::header::WWW_AUTHENTICATE, v);
    }
    r
}

async fn answer(state: &ServerState, req: Request<Incoming>) -> Response<Body> {
    let path = req.uri().path();
    if path.starts_with("/api/") || path == "/-/reload" {
        let authorization = req
            .headers()
            .get(hyper::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let query = req.uri().query().unwrap_or("");
        return admin_route(state, req.method(), path, query, authorization).await;
    }
    let resp = match (req.method(), path) {
        (&Method::GET | &Method::HEAD, "/metrics") => {
            let rt = state.collector.runtime();
            let header = req
                .headers()
                .get("x-prometheus-scrape-timeout-seconds")
                .and_then(|v| v.to_str().ok());
            let deadline = scrape_deadline(header, rt.config.server.scrape_timeout, Instant::now());
            let (snapshot, source, made_by) = state.collector.snapshot(deadline).await;
            debug!(
                source = source.as_str(),
                jobs = snapshot.jobs.len(),
                "scrape answered"
            );
            let gzip = accepts_gzip(req.headers());
            match crate::render::self_metric_texts(&made_by.shared.metrics) {
                Ok(texts) => {
                    let mut r = Response::new(exposition::stream(snapshot, made_by, texts, gzip));
                    r.headers_mut().insert(
                        CONTENT_TYPE,
                        HeaderValue::from_static(EXPOSITION_CONTENT_TYPE),
                    );
                    if gzip {
                        r.headers_mut().insert(
                            hyper::header::CONTENT_ENCODING,
                            HeaderValue::from_static("gzip"),
                        );
                    }
                    r
                }
                Err(e) => {
                    warn!(error = %e, "rendering the exposition failed");
                    text(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "text/plain; charset=utf-8",
                        format!("internal error: {e}\n"),
                    )
                }
            }
        }
        (&Method::GET | &Method::HEAD, "/healthz") => {
            text(StatusCode::OK, "text/plain; charset=utf-8", "ok\n")
        }
        (&Method::GET | &Method::HEAD, "/-/ready") => {
            let view = state.collector.runtime().membership.current();
            if !state.ready.load(Ordering::Relaxed) {
                text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "text/plain; charset=utf-8",
                    "not ready\n",
                )
            } else if let Some(why) = &view.not_owning {
                text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "text/plain; charset=utf-8",
                    format!("not ready: {why}\n"),
                )
            } else {
                text(StatusCode::OK, "text/plain; charset=utf-8", "ready\n")
            }
        }
        (&Method::GET | &Method::HEAD, "/") => {
            text(StatusCode::OK, "text/html; charset=utf-8", LANDING)
        }
        (_, "/metrics" | "/healthz" | "/-/ready" | "/") => method_not_allowed(),
        _ => not_found(),
    };
    resp
}

/// Longest TLS handshake before the connection is dropped.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Serve HTTP/1.1 on one connection (plain or TLS) until it closes or the server shuts down.
async fn serve_connection<I>(
    io: TokioIo<I>,
    state: Arc<ServerState>,
    watcher: hyper_util::server::graceful::Watcher,
    peer: std::net::SocketAddr,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(10))
        .keep_alive(true)
        .serve_connection(io, service_fn(move |req| route(state.clone(), req)));
    if let Err(e) = watcher.watch(conn).await {
        debug!(%peer, error = %e, "connection ended with an error");
    }
}

/// Serve until `shutdown` completes, then let open connections finish (up to 10 s).
pub async fn run(
    listener: TcpListener,
    state: Arc<ServerState>,
    max_connections: usize,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let permits = Arc::new(Semaphore::new(max_connections.max(1)));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            _ = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let state = state.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let tls = match state.web.as_ref().map(|w| w.current()) {
                None => None,
                Some(Ok(settings)) => settings.tls.clone(),
                // The web config does not load: closed, not open with old settings.
                Some(Err(_)) => return,
            };
            match tls {
                None => serve_connection(TokioIo::new(stream), state, watcher, peer).await,
                Some(tls) => {
                    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
                    match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await
                    {
                        Ok(Ok(stream)) => {
                            serve_connection(TokioIo::new(stream), state, watcher, peer).await
                        }
                        Ok(Err(e)) => debug!(%peer, error = %e, "TLS handshake refused"),
                        Err(_) => debug!(%peer, "TLS handshake timed out"),
                    }
                }
            }
            drop(permit);
        });
    }
    info!("shutting down: waiting for open connections");
    if tokio::time::timeout(Duration::from_secs(10), graceful.shutdown())
        .await
        .is_err()
    {
        warn!("connections still open after 10s; closing");
    }
    Ok(())
}

/// Resolves on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gzip_is_used_when_accepted() {
        let mut h = hyper::HeaderMap::new();
        assert!(!accepts_gzip(&h));
        h.insert(
            hyper::header::ACCEPT_ENCODING,
            HeaderValue::from_static("deflate, gzip;q=0.5"),
        );
        assert!(accepts_gzip(&h));
        h.insert(
            hyper::header::ACCEPT_ENCODING,
            HeaderValue::from_static("gzip;q=0, identity"),
        );
        assert!(!accepts_gzip(&h));
    }

    #[test]
    fn deadline_honours_the_header_capped_by_config_minus_margin() {
        let now = Instant::now();
        let cfg = Duration::from_secs(50);
        assert_eq!(
            scrape_deadline(Some("10"), cfg, now),
            now + Duration::from_secs(9)
        );
        assert_eq!(
            scrape_deadline(Some("2.5"), cfg, now),
            now + Duration::from_millis(2250)
        );
        assert_eq!(
            scrape_deadline(Some("120"), cfg, now),
            now + Duration::from_secs(49)
        );
        assert_eq!(
            scrape_deadline(None, cfg, now),
            now + Duration::from_secs(49)
        );
        assert_eq!(
            scrape_deadline(Some("junk"), cfg, now),
            now + Duration::from_secs(49)
        );
        assert_eq!(
            scrape_deadline(Some("1e300"), cfg, now),
            now + Duration::from_secs(49)
        );
        assert_eq!(
            scrape_deadline(Some("-1"), cfg, now),
            now + Duration::from_secs(49)
        );
    }
}
