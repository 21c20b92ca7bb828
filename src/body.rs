//! The one body type mtswarm's responses and forwarded requests use, and constructors for it.

use bytes::Bytes;
use http::{header, Response};
use http_body_util::{combinators::UnsyncBoxBody, BodyExt, Empty, Full};

use crate::api::ApiError;

/// Any error a body may yield while streaming.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A streamed body: engine bodies pass through as they arrive, never held whole.
pub type Body = UnsyncBoxBody<Bytes, BoxError>;

pub fn empty() -> Body {
    Empty::<Bytes>::new().map_err(|never| match never {}).boxed_unsync()
}

pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).map_err(|never| match never {}).boxed_unsync()
}

/// Reads a small body whole, refusing one larger than `limit`.
pub async fn collect_limited(incoming: hyper::body::Incoming, limit: usize) -> Result<Bytes, BoxError> {
    let limited = http_body_util::Limited::new(incoming, limit);
    Ok(limited.collect().await?.to_bytes())
}

/// Reads one of our bodies whole, refusing one larger than `limit`.
pub async fn collect_boxed(mut b: Body, limit: usize) -> Result<Bytes, BoxError> {
    let mut out = bytes::BytesMut::new();
    while let Some(frame) = b.frame().await {
        if let Ok(data) = frame?.into_data() {
            if out.len() + data.len() > limit {
                return Err(format!("the body is larger than {limit} bytes").into());
            }
            out.extend_from_slice(&data);
        }
    }
    Ok(out.freeze())
}

/// Streams an incoming hyper body onward without buffering it.
pub fn stream(incoming: hyper::body::Incoming) -> Body {
    incoming.map_err(BoxError::from).boxed_unsync()
}

/// A body that keeps `guard` until it ends or is dropped (a stream counted while open).
pub fn guarded<G: Send + Unpin + 'static>(inner: Body, guard: G) -> Body {
    Guarded { inner, _guard: guard }.boxed_unsync()
}

struct Guarded<G> {
    inner: Body,
    _guard: G,
}

impl<G: Unpin> http_body::Body for Guarded<G> {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, BoxError>>> {
        std::pin::Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// A body that ends when `end` completes, if `inner` has not ended before (a replica's forwarded stream when the
/// primary changes: the client sees the end of the stream rather than a stream that never moves again). It ends
/// with an error, so that the connection is cut without a last chunk: a download (`docker export`, `save`, `cp`)
/// cut short must not look complete.
pub fn until(inner: Body, end: impl std::future::Future<Output = ()> + Send + 'static) -> Body {
    Until { inner, end: Some(Box::pin(end)) }.boxed_unsync()
}

struct Until {
    inner: Body,
    end: Option<std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>>,
}

impl http_body::Body for Until {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, BoxError>>> {
        if let Some(end) = self.end.as_mut() {
            if end.as_mut().poll(cx).is_ready() {
                self.end = None;
                self.inner = empty();
                return std::task::Poll::Ready(Some(Err("the primary manager changed during the answer".into())));
            }
        }
        std::pin::Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// Streams an engine's body onward, joining frames into one, up to [`COALESCE_LIMIT`] or [`COALESCE_WAIT`]
/// after the first. Engines write logs a line per frame, and hyper's client hands frames over one at a
/// time; passing each on alone costs a write and a wake-up per line. A stream that goes quiet (`logs -f`,
/// `events`) is delayed by at most `COALESCE_WAIT`.
pub fn stream_coalesced(incoming: hyper::body::Incoming) -> Body {
    Coalesce { inner: incoming, pending: None, joined: None, deadline: None }.boxed_unsync()
}

/// How long a frame may wait for the next one to join it.
pub const COALESCE_WAIT: std::time::Duration = std::time::Duration::from_millis(1);

/// The most bytes joined into one frame.
pub const COALESCE_LIMIT: usize = 64 * 1024;

struct Coalesce<B> {
    inner: B,
    /// What was read while joining but could not be joined: a frame past the limit, trailers, or an error,
    /// which must reach the client (a broken body must not look complete).
    pending: Option<Result<hyper::body::Frame<Bytes>, BoxError>>,
    /// The data joined so far, kept across polls while waiting for more.
    joined: Option<bytes::BytesMut>,
    /// When the joined data goes out even if nothing more came.
    deadline: Option<std::pin::Pin<Box<tokio::time::Sleep>>>,
}

impl<B> http_body::Body for Coalesce<B>
where
    B: http_body::Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, BoxError>>> {
        use std::future::Future;
        use std::task::Poll;
        let this = &mut *self;
        if this.joined.is_none() {
            if let Some(f) = this.pending.take() {
                return Poll::Ready(Some(f));
            }
        }
        loop {
            match std::pin::Pin::new(&mut this.inner).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) => {
                        let buf = this.joined.get_or_insert_with(bytes::BytesMut::new);
                        if !buf.is_empty() && buf.len() + data.len() > COALESCE_LIMIT {
                            this.pending = Some(Ok(hyper::body::Frame::data(data)));
                            break;
                        }
                        buf.extend_from_slice(&data);
                        if buf.len() >= COALESCE_LIMIT {
                            break;
                        }
                    }
                    Err(other) => {
                        this.pending = Some(Ok(other));
                        break;
                    }
                },
                // Deliver what arrived before the error, then the error.
                Poll::Ready(Some(Err(e))) => {
                    this.pending = Some(Err(e.into()));
                    break;
                }
                Poll::Ready(None) => break,
                Poll::Pending => {
                    if this.joined.is_none() {
                        return Poll::Pending;
                    }
                    let deadline = this.deadline.get_or_insert_with(|| Box::pin(tokio::time::sleep(COALESCE_WAIT)));
                    if deadline.as_mut().poll(cx).is_pending() {
                        return Poll::Pending;
                    }
                    break;
                }
            }
        }
        this.deadline = None;
        match this.joined.take() {
            Some(b) => Poll::Ready(Some(Ok(hyper::body::Frame::data(b.freeze())))),
            None => Poll::Ready(this.pending.take()),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.pending.is_none() && self.joined.is_none() && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        match (&self.pending, &self.joined) {
            (None, None) => self.inner.size_hint(),
            _ => http_body::SizeHint::default(),
        }
    }
}

/// Several streams of JSON lines (`/events` of every node) merged into one, whole lines interleaved as they
/// come. Streams that open later (a node that joins the cluster) come through `later` and join the merge. It ends
/// when every stream has ended and `later` is closed (or there is none).
pub fn merge_lines(bodies: Vec<Body>, later: Option<tokio::sync::mpsc::Receiver<Body>>) -> Body {
    use futures_util::StreamExt;
    type Lines = futures_util::stream::BoxStream<'static, Result<Bytes, BoxError>>;
    fn lines(b: Body) -> Lines {
        let state = (b, bytes::BytesMut::new(), false);
        futures_util::stream::unfold(state, |(mut b, mut buf, mut ended)| async move {
            loop {
                if let Some(i) = buf.iter().position(|c| *c == b'\n') {
                    let line = buf.split_to(i + 1).freeze();
                    return Some((Ok::<_, BoxError>(line), (b, buf, ended)));
                }
                if ended {
                    if buf.is_empty() {
                        return None;
                    }
                    let rest = buf.split().freeze();
                    return Some((Ok(rest), (b, buf, true)));
                }
                match b.frame().await {
                    Some(Ok(f)) => {
                        if let Ok(d) = f.into_data() {
                            buf.extend_from_slice(&d);
                        }
                    }
                    Some(Err(e)) => return Some((Err(e), (b, buf, true))),
                    None => ended = true,
                }
            }
        })
        .boxed()
    }
    let all = futures_util::stream::select_all(bodies.into_iter().map(lines));
    let merged = futures_util::stream::unfold((all, later), |(mut all, mut later)| async move {
        loop {
            let next = match later.as_mut() {
                None => return all.next().await.map(|item| (item, (all, later))),
                Some(rx) if all.is_empty() => {
                    // Nothing open: wait for a stream to join, or for the end.
                    match rx.recv().await {
                        Some(b) => {
                            all.push(lines(b));
                            continue;
                        }
                        None => return None,
                    }
                }
                Some(rx) => {
                    tokio::select! {
                        joined = rx.recv() => {
                            match joined {
                                Some(b) => all.push(lines(b)),
                                None => later = None,
                            }
                            continue;
                        }
                        item = all.next() => item,
                    }
                }
            };
            match next {
                Some(item) => return Some((item, (all, later))),
                // Every stream open so far has ended; more may still join.
                None => continue,
            }
        }
    });
    http_body_util::StreamBody::new(merged.map(|r| r.map(http_body::Frame::data))).boxed_unsync()
}

/// An [`ApiError`] as the client receives it. (Here, with the body type, so that the vocabulary knows no HTTP body.)
impl ApiError {
    /// Renders the Docker-style body and logs the error once.
    pub fn into_response(self) -> Response<Body> {
        if self.status.is_server_error() {
            tracing::warn!(status = self.status.as_u16(), message = %self.message, "request failed");
        } else {
            tracing::debug!(status = self.status.as_u16(), message = %self.message, "request refused");
        }
        let body = serde_json::json!({ "message": self.message }).to_string() + "\n";
        let mut resp = Response::new(full(body));
        *resp.status_mut() = self.status;
        resp.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/json"));
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::StreamBody;
    use hyper::body::Frame;
    use std::time::Duration;

    #[tokio::test]
    async fn joins_ready_frames_and_keeps_the_error() {
        let frames: Vec<Result<Frame<Bytes>, BoxError>> = vec![
            Ok(Frame::data(Bytes::from_static(b"a"))),
            Ok(Frame::data(Bytes::from_static(b"b"))),
            Err("engine died".into()),
        ];
        let mut body = Coalesce {
            inner: StreamBody::new(futures_util::stream::iter(frames)),
            pending: None,
            joined: None,
            deadline: None,
        };
        let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
        assert_eq!(first, "ab");
        assert!(body.frame().await.unwrap().is_err(), "the error reaches the client");
    }

    #[tokio::test]
    async fn splits_at_the_limit() {
        let big = Bytes::from(vec![b'x'; COALESCE_LIMIT]);
        let frames: Vec<Result<Frame<Bytes>, BoxError>> =
            vec![Ok(Frame::data(Bytes::from_static(b"a"))), Ok(Frame::data(big))];
        let body = Coalesce {
            inner: StreamBody::new(futures_util::stream::iter(frames)),
            pending: None,
            joined: None,
            deadline: None,
        };
        let all = body.collect().await.unwrap().to_bytes();
        assert_eq!(all.len(), COALESCE_LIMIT + 1);
    }

    /// A body of these frames, as an engine's stream cut anywhere.
    fn chunks(parts: &[&'static str]) -> Body {
        let frames: Vec<Result<Frame<Bytes>, BoxError>> =
            parts.iter().map(|p| Ok(Frame::data(Bytes::from_static(p.as_bytes())))).collect();
        StreamBody::new(futures_util::stream::iter(frames)).boxed_unsync()
    }

    fn sorted_lines(all: &[u8]) -> Vec<String> {
        let mut lines: Vec<String> = String::from_utf8_lossy(all).lines().map(str::to_string).collect();
        lines.sort();
        lines
    }

    #[tokio::test]
    async fn merges_whole_lines_and_takes_streams_that_join_later() {
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        let merged = merge_lines(vec![chunks(&["{\"a\":", "1}\n{\"a\":2}\n"]), chunks(&["{\"b\":1}\n"])], Some(rx));
        let joining = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            tx.send(chunks(&["{\"c\"", ":1}\n"])).await.unwrap();
            // The channel closes here: the merge ends once every stream has.
        });
        let all = tokio::time::timeout(Duration::from_secs(5), merged.collect()).await.unwrap().unwrap().to_bytes();
        joining.await.unwrap();
        assert_eq!(sorted_lines(&all), [r#"{"a":1}"#, r#"{"a":2}"#, r#"{"b":1}"#, r#"{"c":1}"#]);
    }

    #[tokio::test]
    async fn a_merge_without_later_streams_ends_with_its_own() {
        let merged = merge_lines(vec![chunks(&["x\n"]), chunks(&["y"])], None);
        let all = tokio::time::timeout(Duration::from_secs(5), merged.collect()).await.unwrap().unwrap().to_bytes();
        assert_eq!(sorted_lines(&all), ["x", "y"]);
    }
}
