//! The listener an operator's tools talk to (`--metrics-addr`), with Prometheus metrics
//! ([`crate::ops::metrics`]) at `GET /metrics` and `GET /healthz`.
//!
//! The listener is separate from the Docker API's: it has no authentication, so it is bound where only the
//! operator's scraper reaches it, as dockerd's `--metrics-addr` is.

use std::sync::Arc;

use bytes::Bytes;
use http::{header, Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::gateway::Gateway;

/// Binds `--metrics-addr`, if given.
pub async fn bind(metrics_addr: Option<&str>) -> anyhow::Result<Option<TcpListener>> {
    use anyhow::Context;
    match metrics_addr {
        None => Ok(None),
        Some(a) => {
            Ok(Some(TcpListener::bind(a).await.with_context(|| format!("cannot listen on --metrics-addr {a}"))?))
        }
    }
}

/// Serves `/metrics` and `/healthz` until the task is dropped.
pub async fn serve(listener: TcpListener, gateway: Arc<Gateway>) {
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(cause = %e, "metrics listener: accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let gw = gateway.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req: Request<hyper::body::Incoming>| {
                let gw = gw.clone();
                async move { Ok::<_, std::convert::Infallible>(answer(&gw, &req).await) }
            });
            if let Err(e) = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await {
                tracing::debug!(cause = %e, "metrics connection ended with an error");
            }
        });
    }
}

async fn answer(gw: &Gateway, req: &Request<hyper::body::Incoming>) -> Response<Full<Bytes>> {
    let reply = |status: StatusCode, kind: &'static str, body: String| {
        let mut r = Response::new(Full::new(Bytes::from(body)));
        *r.status_mut() = status;
        r.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static(kind));
        r
    };
    const JSON: &str = "application/json";
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return reply(StatusCode::METHOD_NOT_ALLOWED, JSON, r#"{"message":"only GET"}"#.to_string() + "\n");
    }
    match req.uri().path() {
        "/metrics" => {
            reply(StatusCode::OK, "application/openmetrics-text; version=1.0.0; charset=utf-8", gw.scrape().await)
        }
        "/healthz" => match gw.health().await {
            Ok(()) => reply(StatusCode::OK, JSON, serde_json::json!({"status": "ok"}).to_string() + "\n"),
            Err(reason) => reply(
                StatusCode::SERVICE_UNAVAILABLE,
                JSON,
                serde_json::json!({"status": "unavailable", "reason": reason}).to_string() + "\n",
            ),
        },
        _ => reply(StatusCode::NOT_FOUND, JSON, r#"{"message":"try /metrics or /healthz"}"#.to_string() + "\n"),
    }
}
