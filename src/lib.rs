//! multicloud-exporter: the cloud providers' own monitoring data (Aliyun CloudMonitor, and in time
//! Tencent Cloud Monitor, AWS CloudWatch and Huawei Cloud Eye) as one consistent set of Prometheus
//! metrics, collected on scrape, across many accounts and regions, sharded over replicas.
//!
//! # Layout
//!
//! - [`cli`]: command-line definitions (clap).
//! - [`config`]: the TOML config as written, `${VAR}` expansion, validation with paths.
//! - [`mapping`]: mapping files (cloud metric -> canonical Prometheus family), loading, checks.
//! - [`cloud`]: the provider enum, shared HTTP client, retries, rate limiters, error classes;
//!   one folder per cloud with its signer, monitor API and discovery.
//! - [`discovery`]: TTL caches over provider discovery and metadata.
//! - [`cluster`]: shard ownership (rendezvous hashing) and membership.
//! - [`scrape`]: plan -> discover -> shard -> fetch -> map, under a deadline, single-flight.
//! - [`render`]: snapshot -> exposition text written straight from the samples, in chunks; the
//!   self-metrics registry.
//! - [`server`]: the hyper HTTP server and its routes (`/metrics` streamed).
//! - [`sim`]: the cloud simulator used by `demo`, `sim`, tests and benchmarks.
//! - [`logging`]: log formats (text, json, logfmt) and the level filter.
//! - [`reload`]: hot reload of the config and mappings (SIGHUP, file change, `POST /-/reload`).
//! - [`cost`]: API calls per scrape and per month, per cloud, API and replica (`plan`, `shard`).
//! - [`app`]: wiring: builds the long-lived state from a config and runs the subcommands.
//! - [`clock`], [`util`]: time source and small shared helpers (encoding, dates, hashing).

// CloudError carries the context an operator needs (API, code, message, request id); it is
// returned by value on purpose, as failures are rare next to successes.
#![allow(clippy::result_large_err)]

pub mod app;
pub mod cli;
pub mod clock;
pub mod cloud;
pub mod cluster;
pub mod config;
pub mod cost;
pub mod discovery;
pub mod logging;
pub mod mapping;
pub mod memory;
pub mod reload;
pub mod render;
pub mod scrape;
pub mod server;
pub mod sim;
pub mod util;
