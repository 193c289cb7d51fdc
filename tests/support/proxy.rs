//! A fault-injecting HTTP/1.1 proxy for an update site: it forwards each GET
//! to a real server (`coxswain serve`) and, for the paths a test names, breaks
//! the answer the way networks and half-finished publishes do.
//!
//! It speaks just enough HTTP/1.1 for the agent: one request per connection
//! (`Connection: close`), `If-None-Match` passed through, `Content-Length`
//! on every answer. It runs on a thread and runtime of its own, so a test may
//! block (waiting for `coxswain agent --once`) while it serves.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

/// What the proxy does to the answer for one path.
#[derive(Clone, Debug)]
pub enum Fault {
    /// Answers with this status and an empty body.
    Status(u16),
    /// Sends only the first half of the body, as a complete answer (its
    /// `Content-Length` matches): a truncated document.
    Truncate,
    /// Sends these bytes instead of the site's, as a complete `200` answer
    /// with a matching length and ETag.
    Replace(Vec<u8>),
    /// Announces the full `Content-Length`, sends half the body, then closes
    /// the connection: a download cut mid-way.
    Cut,
    /// Sends the headers, then the body one byte per interval.
    Trickle(Duration),
}

type Faults = Arc<Mutex<HashMap<String, Fault>>>;
type Hits = Arc<Mutex<HashMap<String, usize>>>;

/// A running proxy, stopped (with every connection it holds) on drop.
pub struct FaultProxy {
    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub url: String,
    faults: Faults,
    hits: Hits,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FaultProxy {
    /// Starts a proxy in front of `upstream` (`http://HOST:PORT`, no trailing slash).
    pub fn start(upstream: &str) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let faults = Faults::default();
        let hits = Hits::default();
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let upstream = upstream.trim_end_matches('/').to_owned();
        let (f, h) = (faults.clone(), hits.clone());
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(serve(listener, upstream, f, h, stopped));
            // Dropping the runtime drops the connections still open (a trickle).
        });
        Self {
            url,
            faults,
            hits,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// Breaks the answers for `path` (e.g. `channels/stable/index.json`) until cleared.
    pub fn set(&self, path: &str, fault: Fault) {
        self.faults
            .lock()
            .unwrap()
            .insert(path.trim_start_matches('/').to_owned(), fault);
    }

    /// Serves `path` faithfully again.
    pub fn clear(&self, path: &str) {
        self.faults
            .lock()
            .unwrap()
            .remove(path.trim_start_matches('/'));
    }

    /// How many requests for `path` arrived so far.
    pub fn hits(&self, path: &str) -> usize {
        self.hits
            .lock()
            .unwrap()
            .get(path.trim_start_matches('/'))
            .copied()
            .unwrap_or(0)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn serve(
    listener: std::net::TcpListener,
    upstream: String,
    faults: Faults,
    hits: Hits,
    mut stopped: tokio::sync::oneshot::Receiver<()>,
) {
    let listener = TcpListener::from_std(listener).unwrap();
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    loop {
        tokio::select! {
            _ = &mut stopped => return,
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let (client, upstream, faults, hits) =
                    (client.clone(), upstream.clone(), faults.clone(), hits.clone());
                tokio::spawn(async move {
                    // A client that goes away mid-answer is part of the game.
                    let _ = handle(stream, &client, &upstream, &faults, &hits).await;
                });
            }
        }
    }
}

/// The request line's path and the `If-None-Match` header, or `None` for
/// anything that is not a readable GET.
async fn read_request(stream: &mut TcpStream) -> std::io::Result<Option<(String, Option<String>)>> {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf).await?;
        if n == 0 || head.len() > 64 * 1024 {
            return Ok(None);
        }
        head.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&head);
    let mut lines = text.split("\r\n");
    let mut request_line = lines.next().unwrap_or("").split(' ');
    let (Some("GET"), Some(target)) = (request_line.next(), request_line.next()) else {
        return Ok(None);
    };
    let if_none_match = lines.find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.eq_ignore_ascii_case("if-none-match")
            .then(|| value.trim().to_owned())
    });
    Ok(Some((target.to_owned(), if_none_match)))
}

async fn handle(
    mut stream: TcpStream,
    client: &reqwest::Client,
    upstream: &str,
    faults: &Faults,
    hits: &Hits,
) -> std::io::Result<()> {
    let Some((target, if_none_match)) = read_request(&mut stream).await? else {
        return stream.write_all(&head(400, None, 0)).await;
    };
    let path = target.trim_start_matches('/').to_owned();
    *hits.lock().unwrap().entry(path.clone()).or_default() += 1;
    let fault = faults.lock().unwrap().get(&path).cloned();
    if let Some(Fault::Status(status)) = fault {
        return stream.write_all(&head(status, None, 0)).await;
    }
    if let Some(Fault::Replace(bytes)) = fault {
        let etag = coxswain::site::strong_etag(&bytes);
        stream
            .write_all(&head(200, Some(&etag), bytes.len()))
            .await?;
        return stream.write_all(&bytes).await;
    }

    let mut request = client.get(format!("{upstream}{target}"));
    if let Some(etag) = &if_none_match {
        request = request.header("If-None-Match", etag);
    }
    let Ok(response) = request.send().await else {
        return stream.write_all(&head(502, None, 0)).await;
    };
    let status = response.status().as_u16();
    let etag = response
        .headers()
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let Ok(body) = response.bytes().await else {
        return stream.write_all(&head(502, None, 0)).await;
    };
    let half = body.len() / 2;
    match fault {
        None | Some(Fault::Status(_) | Fault::Replace(_)) => {
            stream
                .write_all(&head(status, etag.as_deref(), body.len()))
                .await?;
            stream.write_all(&body).await
        }
        Some(Fault::Truncate) => {
            stream.write_all(&head(status, None, half)).await?;
            stream.write_all(&body[..half]).await
        }
        Some(Fault::Cut) => {
            stream
                .write_all(&head(status, etag.as_deref(), body.len()))
                .await?;
            stream.write_all(&body[..half]).await?;
            stream.flush().await?;
            stream.shutdown().await
        }
        Some(Fault::Trickle(every)) => {
            stream
                .write_all(&head(status, etag.as_deref(), body.len()))
                .await?;
            for byte in body.iter() {
                stream.write_all(std::slice::from_ref(byte)).await?;
                stream.flush().await?;
                tokio::time::sleep(every).await;
            }
            Ok(())
        }
    }
}

/// A status line and headers for a body of `len` bytes.
fn head(status: u16, etag: Option<&str>, len: usize) -> Vec<u8> {
    let mut text = format!(
        "HTTP/1.1 {status} {}\r\nContent-Length: {len}\r\nConnection: close\r\n",
        reason(status)
    );
    if let Some(etag) = etag {
        text.push_str(&format!("ETag: {etag}\r\n"));
    }
    text.push_str("\r\n");
    text.into_bytes()
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        304 => "Not Modified",
        400 => "Bad Request",
        404 => "Not Found",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Fault",
    }
}
