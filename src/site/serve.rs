//! `coxswain serve`: a small static file server for an update site.
//!
//! Production sites are usually nginx, object storage or a CDN; this one exists for tests,
//! demos and small set-ups, and behaves like a careful static server:
//!
//! - GET and HEAD only (405 otherwise), no directory listings (404), nothing outside the
//!   site directory: `..`/`.` segments (also percent-encoded), encoded slashes,
//!   backslashes and NUL are answered 400; hidden names (`.tmp-*` files of a publish in
//!   progress) and symlinks leading out of the directory are 404.
//! - A strong ETag, `"sha256-<hex>"` of the file's bytes (the same value
//!   [`crate::site::strong_etag`] gives for a directory site). Hashes are cached per
//!   (path, device, inode, size, mtime), so a 304 or a HEAD for an unchanged file needs no
//!   read; a publish replaces files by rename, which always changes the inode.
//! - `If-None-Match` → 304, `Content-Length`, `Content-Type` (`application/json` for
//!   `.json`, `application/gzip` for `.tgz`/`.gz`, `application/octet-stream` otherwise),
//!   and `Cache-Control` (content-addressed charts are immutable, the rest `no-cache`).
//! - One access log line per request through `tracing`: method, path, status, bytes,
//!   duration.
//! - Files are read whole into memory, up to [`ServeOptions::max_file_bytes`].

use std::collections::HashMap;
use std::future::Future;
use std::io::Read;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, Response, StatusCode, header};
use tokio::net::TcpListener;
use tower_http::trace::TraceLayer;
use tracing::Span;

use crate::site::{check_segment, if_none_match_matches, strong_etag};

/// Settings of the static server.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// Largest file served; larger ones get a 500 and a log line (the site's own readers
    /// refuse far smaller documents anyway).
    pub max_file_bytes: u64,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            max_file_bytes: 256 * 1024 * 1024,
        }
    }
}

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The site directory is missing or not a directory.
    #[error("cannot serve the site directory {dir}")]
    Dir {
        /// The directory as given.
        dir: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address as given.
        addr: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The server failed while running.
    #[error("the server failed")]
    Run(#[source] std::io::Error),
}

/// Binds `addr` (`127.0.0.1:0` picks a free port; ask the listener for it).
pub async fn bind(addr: &str) -> Result<TcpListener, ServeError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Bind {
            addr: addr.to_owned(),
            source,
        })
}

/// The router serving `dir`, with the access log attached.
pub fn router(dir: &Path, options: ServeOptions) -> Result<Router, ServeError> {
    let dir_error = |source| ServeError::Dir {
        dir: dir.to_path_buf(),
        source,
    };
    let root = dir.canonicalize().map_err(dir_error)?;
    if !root.is_dir() {
        return Err(dir_error(std::io::Error::new(
            std::io::ErrorKind::NotADirectory,
            "not a directory",
        )));
    }
    let state = Arc::new(ServerState {
        root,
        options,
        etags: Mutex::new(HashMap::new()),
    });
    let access_log = TraceLayer::new_for_http()
        .make_span_with(|request: &Request| {
            tracing::info_span!(
                "access",
                method = %request.method(),
                path = %request.uri().path(),
            )
        })
        .on_request(())
        .on_response(
            |response: &Response<Body>, latency: Duration, _span: &Span| {
                let bytes = response.extensions().get::<BodyBytes>().map_or(0, |b| b.0);
                tracing::info!(
                    status = response.status().as_u16(),
                    bytes,
                    duration_ms = latency.as_secs_f64() * 1000.0,
                    "served"
                );
            },
        )
        .on_failure(());
    Ok(Router::new()
        .fallback(handle)
        .with_state(state)
        .layer(access_log))
}

/// Serves `router` on `listener` until `shutdown` completes, then lets requests in flight
/// finish.
pub async fn run(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(ServeError::Run)
}

/// Completes on ctrl-c or, on Unix, SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::warn!(%error, "cannot listen for ctrl-c");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                term.recv().await;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
    tracing::info!("shutting down");
}

/// The address to print for a bound listener.
pub fn display_url(addr: SocketAddr) -> String {
    format!("http://{addr}")
}

struct ServerState {
    root: PathBuf,
    options: ServeOptions,
    etags: Mutex<HashMap<FileKey, String>>,
}

/// Enough to notice that a file changed: a publish renames a new file into place (new
/// inode); an in-place edit changes size or mtime.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct FileKey {
    path: PathBuf,
    dev: u64,
    ino: u64,
    len: u64,
    modified: Option<SystemTime>,
}

/// At most this many ETags are cached; the cache is cleared when full (sites are small).
const ETAG_CACHE_ENTRIES: usize = 4096;

/// Body bytes of a response, for the access log (0 for HEAD and 304).
#[derive(Clone, Copy, Debug)]
struct BodyBytes(u64);

/// How a request path maps onto the site.
#[derive(Debug, PartialEq, Eq)]
enum Target {
    /// Segments of a file path to look up.
    File(Vec<String>),
    /// The root, a directory, or a name a site never holds: 404.
    NotFound,
    /// An escape attempt or an undecodable path: 400.
    BadRequest,
}

fn classify_path(raw: &str) -> Target {
    let Some(rest) = raw.strip_prefix('/') else {
        return Target::BadRequest;
    };
    if rest.is_empty() {
        return Target::NotFound;
    }
    let mut segments = Vec::new();
    let count = rest.split('/').count();
    for (i, segment) in rest.split('/').enumerate() {
        if segment.is_empty() {
            // A trailing slash asks for a listing; `a//b` or `//x` is not a site path.
            return if i + 1 == count {
                Target::NotFound
            } else {
                Target::BadRequest
            };
        }
        let Some(decoded) = percent_decode(segment) else {
            return Target::BadRequest;
        };
        if decoded == b"." || decoded == b".." || decoded.iter().any(|b| b"/\\\0".contains(b)) {
            return Target::BadRequest;
        }
        let Ok(decoded) = String::from_utf8(decoded) else {
            return Target::BadRequest;
        };
        if check_segment(&decoded).is_err() {
            return Target::NotFound;
        }
        segments.push(decoded);
    }
    Target::File(segments)
}

fn percent_decode(segment: &str) -> Option<Vec<u8>> {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Some(out)
}

fn content_type(name: &str) -> &'static str {
    if name.ends_with(".json") {
        "application/json"
    } else if name.ends_with(".tgz") || name.ends_with(".gz") {
        "application/gzip"
    } else {
        "application/octet-stream"
    }
}

/// What the blocking file lookup found.
enum Lookup {
    Missing,
    TooLarge(u64),
    Found {
        etag: String,
        len: u64,
        /// `None` when the caller did not need the body (HEAD or a matching ETag).
        bytes: Option<Vec<u8>>,
    },
}

async fn handle(
    State(state): State<Arc<ServerState>>,
    method: Method,
    headers: HeaderMap,
    request: Request,
) -> Response<Body> {
    if method != Method::GET && method != Method::HEAD {
        let mut response = plain(StatusCode::METHOD_NOT_ALLOWED);
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    let segments = match classify_path(request.uri().path()) {
        Target::File(segments) => segments,
        Target::NotFound => return plain(StatusCode::NOT_FOUND),
        Target::BadRequest => return plain(StatusCode::BAD_REQUEST),
    };
    let if_none_match = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let is_head = method == Method::HEAD;
    let name = segments.last().cloned().unwrap_or_default();
    let immutable = segments.len() == 2 && segments[0] == "charts" && name.starts_with("sha256-");
    let lookup_state = Arc::clone(&state);
    let wanted = if_none_match.clone();
    let lookup = tokio::task::spawn_blocking(move || {
        lookup_file(&lookup_state, &segments, is_head, wanted.as_deref())
    })
    .await;
    let (etag, len, bytes) = match lookup {
        Ok(Ok(Lookup::Found { etag, len, bytes })) => (etag, len, bytes),
        Ok(Ok(Lookup::Missing)) => return plain(StatusCode::NOT_FOUND),
        Ok(Ok(Lookup::TooLarge(len))) => {
            tracing::error!(
                len,
                limit = state.options.max_file_bytes,
                "file too large to serve"
            );
            return plain(StatusCode::INTERNAL_SERVER_ERROR);
        }
        Ok(Err(error)) => {
            tracing::error!(%error, "cannot read file");
            return plain(StatusCode::INTERNAL_SERVER_ERROR);
        }
        Err(error) => {
            tracing::error!(%error, "file lookup task failed");
            return plain(StatusCode::INTERNAL_SERVER_ERROR);
        }
    };
    let not_modified = if_none_match
        .as_deref()
        .is_some_and(|h| if_none_match_matches(h, &etag));
    let status = if not_modified {
        StatusCode::NOT_MODIFIED
    } else {
        StatusCode::OK
    };
    let sent = match (&bytes, not_modified || is_head) {
        (Some(bytes), false) => bytes.len() as u64,
        _ => 0,
    };
    let body = match bytes {
        Some(bytes) if !not_modified && !is_head => Body::from(bytes),
        _ => Body::empty(),
    };
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let h = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, value);
    }
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(if immutable {
            "public, max-age=31536000, immutable"
        } else {
            "no-cache"
        }),
    );
    if !not_modified {
        h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(content_type(&name)),
        );
    }
    response.extensions_mut().insert(BodyBytes(sent));
    response
}

fn plain(status: StatusCode) -> Response<Body> {
    let text = status.canonical_reason().unwrap_or("error");
    let mut response = Response::new(Body::from(format!("{text}\n")));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
        .extensions_mut()
        .insert(BodyBytes(text.len() as u64 + 1));
    response
}

fn lookup_file(
    state: &ServerState,
    segments: &[String],
    is_head: bool,
    if_none_match: Option<&str>,
) -> std::io::Result<Lookup> {
    let mut path = state.root.clone();
    path.extend(segments);
    let real = match path.canonicalize() {
        Ok(real) => real,
        Err(e) if is_absent(&e) => return Ok(Lookup::Missing),
        Err(e) => return Err(e),
    };
    if !real.starts_with(&state.root) {
        tracing::warn!(path = %path.display(), "refusing a symlink that leaves the site");
        return Ok(Lookup::Missing);
    }
    let file = match std::fs::File::open(&real) {
        Ok(file) => file,
        Err(e) if is_absent(&e) => return Ok(Lookup::Missing),
        Err(e) => return Err(e),
    };
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Ok(Lookup::Missing);
    }
    let key = file_key(real, &meta);
    let cached = state
        .etags
        .lock()
        .ok()
        .and_then(|cache| cache.get(&key).cloned());
    if let Some(etag) = cached {
        let body_needed =
            !is_head && !if_none_match.is_some_and(|h| if_none_match_matches(h, &etag));
        if !body_needed {
            return Ok(Lookup::Found {
                etag,
                len: meta.len(),
                bytes: None,
            });
        }
    }
    if meta.len() > state.options.max_file_bytes {
        return Ok(Lookup::TooLarge(meta.len()));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    file.take(state.options.max_file_bytes.saturating_add(1))
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > state.options.max_file_bytes {
        return Ok(Lookup::TooLarge(bytes.len() as u64));
    }
    let etag = strong_etag(&bytes);
    if let Ok(mut cache) = state.etags.lock() {
        if cache.len() >= ETAG_CACHE_ENTRIES {
            cache.clear();
        }
        cache.insert(key, etag.clone());
    }
    Ok(Lookup::Found {
        etag,
        len: bytes.len() as u64,
        bytes: Some(bytes),
    })
}

fn is_absent(error: &std::io::Error) -> bool {
    matches!(
        error.kind(),
        std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
    )
}

#[cfg(unix)]
fn file_key(path: PathBuf, meta: &std::fs::Metadata) -> FileKey {
    use std::os::unix::fs::MetadataExt;
    FileKey {
        path,
        dev: meta.dev(),
        ino: meta.ino(),
        len: meta.len(),
        modified: meta.modified().ok(),
    }
}

#[cfg(not(unix))]
fn file_key(path: PathBuf, meta: &std::fs::Metadata) -> FileKey {
    FileKey {
        path,
        dev: 0,
        ino: 0,
        len: meta.len(),
        modified: meta.modified().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(segments: &[&str]) -> Target {
        Target::File(segments.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn request_paths_map_onto_site_files_or_are_refused() {
        assert_eq!(
            classify_path("/channels/stable/index.json"),
            file(&["channels", "stable", "index.json"])
        );
        assert_eq!(
            classify_path("/trust/2.json%2Esig"),
            file(&["trust", "2.json.sig"])
        );
        for listing in ["/", "/charts/", "/channels/stable/", "/.tmp-x", "/a/b c"] {
            assert_eq!(classify_path(listing), Target::NotFound, "{listing}");
        }
        for escape in [
            "/../etc/passwd",
            "/charts/../../x",
            "/%2e%2e/x",
            "/%2E%2e/x",
            "/charts/%2e",
            "/a%2fb",
            "/a%5cb",
            "/a\\b",
            "//etc/passwd",
            "/a//b",
            "/a%00b",
            "/a%zz",
            "/a%2",
            "/%ff",
            "relative",
        ] {
            assert_eq!(classify_path(escape), Target::BadRequest, "{escape}");
        }
    }

    #[test]
    fn content_types_follow_the_extension() {
        assert_eq!(content_type("index.json"), "application/json");
        assert_eq!(content_type("sha256-ab.tgz"), "application/gzip");
        assert_eq!(content_type("index.json.sig"), "application/octet-stream");
    }

    #[test]
    fn router_refuses_a_missing_directory() {
        match router(Path::new("/nonexistent/coxswain"), ServeOptions::default()) {
            Err(ServeError::Dir { dir, .. }) => assert_eq!(dir, Path::new("/nonexistent/coxswain")),
            other => panic!("{:?}", other.err()),
        }
    }
}
