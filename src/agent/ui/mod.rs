//! The agent's read-only web server: the HTML UI (server-rendered, no
//! JavaScript), `/api/v1/status` (the same data as JSON), `/healthz`,
//! `/readyz` and `/metrics`.
//!
//! Everything shown comes from the agent's [`AgentState`] and [`Metrics`];
//! the server never calls the Kubernetes API, helm or the update site, so a
//! busy page cannot slow the agent down or make it do anything. Values and
//! secrets are never in that state (see [`crate::agent::view`]).

mod api;
pub mod pages;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;

use crate::agent::AgentState;
use crate::metrics::Metrics;

pub use api::{StatusDocument, status_document};

/// The content type of the OpenMetrics text exposition.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// What every handler reads.
#[derive(Clone)]
pub struct UiState {
    /// The agent's state.
    pub agent: AgentState,
    /// The agent's metrics.
    pub metrics: Arc<Metrics>,
    /// The namespace the agent serves.
    pub namespace: String,
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum UiError {
    /// The address could not be bound.
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// The router of every page and endpoint.
pub fn router(state: UiState) -> Router {
    Router::new()
        .route("/", get(overview))
        .route("/subscriptions/{name}", get(subscription))
        .route("/subscriptions/{name}/preview", get(preview))
        .route("/subscriptions/{name}/releases/{release}", get(release))
        .route("/api/v1/status", get(status_json))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/style.css", get(style))
        .fallback(not_found)
        .with_state(state)
}

/// Binds `addr`; returns the bound address and the future that serves (until dropped).
pub async fn bind(
    addr: SocketAddr,
    state: UiState,
) -> Result<(SocketAddr, impl Future<Output = std::io::Result<()>>), UiError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| UiError::Bind { addr, source })?;
    let local = listener
        .local_addr()
        .map_err(|source| UiError::Bind { addr, source })?;
    let app = router(state).layer(
        tower_http::trace::TraceLayer::new_for_http()
            .make_span_with(tower_http::trace::DefaultMakeSpan::new().level(tracing::Level::DEBUG))
            .on_response(tower_http::trace::DefaultOnResponse::new().level(tracing::Level::DEBUG)),
    );
    Ok((local, async move { axum::serve(listener, app).await }))
}

fn html(markup: maud::Markup) -> Response {
    let mut r = Html(markup.into_string()).into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'self'; img-src 'self'"),
    );
    r
}

async fn overview(State(s): State<UiState>) -> Response {
    let doc = status_document(&s.agent, &s.namespace).await;
    html(pages::overview(&doc))
}

async fn subscription(State(s): State<UiState>, Path(name): Path<String>) -> Response {
    let doc = status_document(&s.agent, &s.namespace).await;
    match doc.subscriptions.iter().find(|x| x.name == name) {
        Some(sub) => html(pages::subscription(&doc, sub)),
        None => not_found_named(&format!("subscription {}/{name}", s.namespace)),
    }
}

async fn preview(State(s): State<UiState>, Path(name): Path<String>) -> Response {
    let doc = status_document(&s.agent, &s.namespace).await;
    match doc.subscriptions.iter().find(|x| x.name == name) {
        Some(sub) => html(pages::preview(&doc, sub)),
        None => not_found_named(&format!("subscription {}/{name}", s.namespace)),
    }
}

async fn release(
    State(s): State<UiState>,
    Path((name, release)): Path<(String, String)>,
) -> Response {
    let doc = status_document(&s.agent, &s.namespace).await;
    let Some(sub) = doc.subscriptions.iter().find(|x| x.name == name) else {
        return not_found_named(&format!("subscription {}/{name}", s.namespace));
    };
    let known = sub.releases.iter().any(|r| r.name == release)
        || sub.history.iter().any(|h| h.operation.release == release);
    if !known {
        return not_found_named(&format!("release {release} of subscription {name}"));
    }
    html(pages::release(&doc, sub, &release))
}

async fn status_json(State(s): State<UiState>) -> Response {
    let doc = status_document(&s.agent, &s.namespace).await;
    let mut r = axum::Json(doc).into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(s): State<UiState>) -> Response {
    match s.agent.readiness() {
        // A follower serves too; it says who leads.
        Ok(()) => match s.agent.leader().view().sentence() {
            Some(who) => (StatusCode::OK, format!("ok: {who}\n")).into_response(),
            None => (StatusCode::OK, "ok\n").into_response(),
        },
        Err(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {why}\n"),
        )
            .into_response(),
    }
}

async fn metrics(State(s): State<UiState>) -> Response {
    match s.metrics.encode() {
        Ok(text) => ([(header::CONTENT_TYPE, OPENMETRICS)], text).into_response(),
        Err(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "cannot encode the metrics\n",
        )
            .into_response(),
    }
}

async fn style() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        pages::STYLE,
    )
        .into_response()
}

async fn not_found() -> Response {
    not_found_named("page")
}

fn not_found_named(what: &str) -> Response {
    let mut r = html(pages::not_found(what));
    *r.status_mut() = StatusCode::NOT_FOUND;
    r
}
