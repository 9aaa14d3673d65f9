//! The actix-web server of the contract, generic over a [`Backend`] (a [`Predictor`] on the
//! blocking pool, or a batched service's queue).

use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::sync::Arc;
use std::time::Instant;

use actix_web::error::PayloadError;
use actix_web::http::header;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use serde::Serialize;
use socket2::{Domain, Protocol, Socket, Type};

use crate::backend::{Backend, Blocking};
use crate::config::ServiceArgs;
use crate::error::ApiError;
use crate::predict::{PredictError, Predictor};
use crate::request::{self, MAX_BODY_BYTES, RequestError};

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot bind {address}: {reason}")]
    Bind { address: String, reason: String },
    #[error("server failed: {0}")]
    Server(#[from] std::io::Error),
}

#[derive(Serialize)]
struct AgeResponse {
    label: String,
    score: f64,
}

/// Listening sockets for `host:port`, bound before the model is loaded so that a port in
/// use fails at once; connections wait in the backlog until [`serve`] starts accepting.
#[derive(Debug)]
pub struct Listeners {
    address: String,
    sockets: Vec<TcpListener>,
}

/// Actix's default listen backlog.
pub const BACKLOG: i32 = 1024;

/// Binds every address `host` resolves to (as actix's `bind` does); fails if none binds.
pub fn bind(args: &ServiceArgs) -> Result<Listeners, ServeError> {
    let address = args.address();
    let fail = |e: &std::io::Error| ServeError::Bind { address: address.clone(), reason: bind_reason(e) };
    let addrs: Vec<SocketAddr> =
        (args.host.as_str(), args.port).to_socket_addrs().map_err(|e| fail(&e))?.collect();
    let mut sockets = Vec::new();
    let mut last_error = None;
    for addr in addrs {
        match listen(addr) {
            Ok(socket) => sockets.push(socket),
            Err(e) => last_error = Some(e),
        }
    }
    match (sockets.is_empty(), last_error) {
        (false, _) => Ok(Listeners { address, sockets }),
        (true, Some(e)) => Err(fail(&e)),
        (true, None) => {
            Err(ServeError::Bind { address: address.clone(), reason: "host resolves to no address".into() })
        }
    }
}

fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    Ok(socket.into())
}

/// Serves `predictor` (on the blocking pool) on `listeners`; see [`serve_backend`].
pub fn serve<P: Predictor + 'static>(
    args: &ServiceArgs,
    listeners: Listeners,
    predictor: P,
) -> Result<(), ServeError> {
    serve_backend(args, listeners, Blocking::new(predictor))
}

/// Serves on `listeners` until SIGTERM (graceful, at most [`Backend::SHUTDOWN_TIMEOUT`]) or SIGINT.
/// Runs its own actix system: call it from `main`, outside any async runtime. On SIGTERM
/// it stops accepting and returns once every request in flight is answered (or the timeout
/// passed), so a queued backend must keep answering until then.
pub fn serve_backend<B: Backend>(
    args: &ServiceArgs,
    listeners: Listeners,
    backend: B,
) -> Result<(), ServeError> {
    let backend = Arc::new(backend);
    let workers = args.workers.get();
    let Listeners { address, sockets } = listeners;
    actix_web::rt::System::new().block_on(async move {
        let mut server = HttpServer::new(move || App::new().configure(routes(backend.clone())))
            .workers(workers)
            .shutdown_timeout(B::SHUTDOWN_TIMEOUT.as_secs());
        for socket in sockets {
            server = server.listen(socket)?;
        }
        eprintln!("listening on http://{address} (workers {workers})");
        server.run().await?;
        eprintln!("stopped");
        Ok(())
    })
}

/// [`bind`] then [`serve`].
pub fn run<P: Predictor + 'static>(args: &ServiceArgs, predictor: P) -> Result<(), ServeError> {
    serve(args, bind(args)?, predictor)
}

fn bind_reason(error: &std::io::Error) -> String {
    use std::io::ErrorKind;
    match error.kind() {
        ErrorKind::AddrInUse => "address in use".into(),
        ErrorKind::AddrNotAvailable => "address not available".into(),
        ErrorKind::PermissionDenied => "permission denied".into(),
        _ => error.to_string(),
    }
}

/// Routes, extractor limits and fallbacks of the contract, for `App::configure`.
pub fn routes<B: Backend>(backend: Arc<B>) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg| {
        // Decided once per worker: a backend counts its runs or never does.
        if backend.run_counts().is_some() {
            cfg.service(
                web::resource("/stats")
                    .route(web::get().to(stats::<B>))
                    .default_service(web::to(|| method_not_allowed("GET"))),
            );
        }
        cfg.app_data(web::Data::from(backend))
            .app_data(web::PayloadConfig::new(MAX_BODY_BYTES))
            .service(
                web::resource("/age")
                    .route(web::post().to(age::<B>))
                    .default_service(web::to(|| method_not_allowed("POST"))),
            )
            .service(
                web::resource("/health")
                    .route(web::get().to(health))
                    .default_service(web::to(|| method_not_allowed("GET"))),
            )
            .default_service(web::to(not_found));
    }
}

/// `POST /age`. The body arrives as bytes (limited to 1 MiB) so that every failure,
/// oversize included, becomes the contract's JSON error, checked in the contract's order.
async fn age<B: Backend>(
    req: HttpRequest,
    body: Result<web::Bytes, actix_web::Error>,
    backend: web::Data<B>,
) -> Result<HttpResponse, ApiError> {
    let started = Instant::now();
    request::check_content_type(req.headers().get(header::CONTENT_TYPE).map(|v| v.as_bytes()))?;
    let body = body.map_err(body_error)?;
    let text = request::parse_body(&body)?;
    drop(body);

    let prediction = backend.predict(text).await.map_err(predict_error)?;

    let mut response = HttpResponse::Ok();
    response
        .insert_header(("x-tokenization-time", prediction.tokenization_us))
        .insert_header(("x-inference-time", prediction.inference_us));
    if let Some(batch) = prediction.batch {
        response
            .insert_header(("x-batch-size", batch.batch_size))
            .insert_header(("x-queue-time", batch.queue_us));
    }
    let total_us = started.elapsed().as_micros() as u64;
    Ok(response
        .insert_header(("x-total-time", total_us))
        .json(AgeResponse { label: prediction.label, score: prediction.score }))
}

/// A full queue is the client's to retry; any other failure is logged and hidden.
fn predict_error(error: PredictError) -> ApiError {
    match error {
        PredictError::QueueFull { max_queue } => ApiError::Overloaded { max_queue },
        other => {
            eprintln!("error: {other}");
            ApiError::Internal
        }
    }
}

fn body_error(error: actix_web::Error) -> RequestError {
    match error.as_error::<PayloadError>() {
        Some(PayloadError::Overflow) => RequestError::TooLarge,
        Some(other) => RequestError::Unreadable(other.to_string()),
        None => RequestError::Unreadable(error.to_string()),
    }
}

async fn health() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "ok" }))
}

/// `GET /stats` (batched backends only: [`routes`] adds it for them alone).
async fn stats<B: Backend>(backend: web::Data<B>) -> HttpResponse {
    match backend.run_counts() {
        Some(counts) => HttpResponse::Ok().json(counts),
        None => not_found().await,
    }
}

async fn method_not_allowed(allow: &'static str) -> HttpResponse {
    let error = ApiError::MethodNotAllowed;
    HttpResponse::build(error.status()).insert_header((header::ALLOW, allow)).json(error.body())
}

async fn not_found() -> HttpResponse {
    let error = ApiError::NotFound;
    HttpResponse::build(error.status()).json(error.body())
}

/// The routes with model-free backends, for this module's and [`crate::contract_cases`]' tests.
#[cfg(test)]
pub(crate) mod testing {
    use super::*;
    use crate::counts::RunCounts;
    use crate::predict::{BatchInfo, PredictError, Prediction};
    use actix_web::test::{self, TestRequest};
    use serde_json::Value;

    /// Labels by the text's length parity; fails for "boom".
    pub struct Fake;

    impl Predictor for Fake {
        fn predict(&self, text: &str) -> Result<Prediction, PredictError> {
            if text == "boom" {
                return Err(PredictError::Backend("secret detail".into()));
            }
            let label = if text.len().is_multiple_of(2) { "POSITIVE" } else { "NEGATIVE" };
            Ok(Prediction {
                label: label.into(),
                score: 0.75,
                tokenization_us: 12,
                inference_us: 34,
                batch: None,
            })
        }
    }

    /// A batched service's shape: answers like [`Fake`] with batch info, without blocking;
    /// "full" finds the queue full.
    pub struct Queued;

    impl Backend for Queued {
        async fn predict(&self, text: String) -> Result<Prediction, PredictError> {
            if text == "full" {
                return Err(PredictError::QueueFull { max_queue: 3 });
            }
            let prediction = Fake.predict(&text)?;
            Ok(Prediction { batch: Some(BatchInfo { batch_size: 5, queue_us: 67 }), ..prediction })
        }

        fn run_counts(&self) -> Option<RunCounts> {
            Some(QUEUED_COUNTS)
        }
    }

    /// What [`Queued`] says its runs held.
    pub const QUEUED_COUNTS: RunCounts = RunCounts { runs: 2, rows: 5, tokens: 30, positions: 40 };

    /// Status, headers and JSON body of `req` answered by the routes over [`Fake`].
    pub async fn call(req: TestRequest) -> (u16, actix_web::http::header::HeaderMap, Value) {
        call_with(Blocking::new(Fake), req).await
    }

    /// Status, headers and JSON body of `req` answered by the routes over `backend`.
    pub async fn call_with<B: Backend>(
        backend: B,
        req: TestRequest,
    ) -> (u16, actix_web::http::header::HeaderMap, Value) {
        let app = test::init_service(App::new().configure(routes(Arc::new(backend)))).await;
        let resp = test::call_service(&app, req.to_request()).await;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = test::read_body(resp).await;
        let json = serde_json::from_slice(&body).unwrap_or_else(|_| panic!("not JSON: {body:?}"));
        (status, headers, json)
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{QUEUED_COUNTS, Queued, call, call_with};
    use super::*;
    use actix_web::test::TestRequest;

    fn post(body: impl Into<web::Bytes>) -> TestRequest {
        TestRequest::post()
            .uri("/age")
            .insert_header((header::CONTENT_TYPE, "application/json"))
            .set_payload(body)
    }

    #[actix_web::test]
    async fn age_answers_with_label_score_and_timings() {
        let (status, headers, json) = call(post(r#"{"inputs": "good", "other": 1}"#)).await;
        assert_eq!(status, 200);
        assert_eq!(json, serde_json::json!({"label": "POSITIVE", "score": 0.75}));
        assert_eq!(headers.get("x-tokenization-time").unwrap(), "12");
        assert_eq!(headers.get("x-inference-time").unwrap(), "34");
        let total: u64 = headers.get("x-total-time").unwrap().to_str().unwrap().parse().unwrap();
        assert!(total < 10_000_000);
        assert_eq!(headers.get(header::CONTENT_TYPE).unwrap(), "application/json");
        assert!(headers.get("x-batch-size").is_none() && headers.get("x-queue-time").is_none());
    }

    #[actix_web::test]
    async fn a_batched_answer_carries_batch_size_and_queue_time() {
        let (status, headers, json) = call_with(Queued, post(r#"{"inputs": "good"}"#)).await;
        assert_eq!((status, json), (200, serde_json::json!({"label": "POSITIVE", "score": 0.75})));
        assert_eq!(headers.get("x-batch-size").unwrap(), "5");
        assert_eq!(headers.get("x-queue-time").unwrap(), "67");
        assert_eq!(headers.get("x-inference-time").unwrap(), "34");
        assert!(headers.get("x-total-time").is_some());
    }

    #[actix_web::test]
    async fn a_full_queue_is_a_503_with_retry_after() {
        let (status, headers, json) = call_with(Queued, post(r#"{"inputs": "full"}"#)).await;
        assert_eq!(status, 503);
        assert_eq!(json, serde_json::json!({"error": "queue full: 3 requests waiting; retry later"}));
        assert_eq!(headers.get(header::RETRY_AFTER).unwrap(), "1");
        assert_eq!(headers.get(header::CONTENT_TYPE).unwrap(), "application/json");
    }

    #[actix_web::test]
    async fn age_accepts_charset_parameter_and_large_text() {
        let req = TestRequest::post()
            .uri("/age")
            .insert_header((header::CONTENT_TYPE, "application/json; charset=utf-8"))
            .set_payload(serde_json::to_vec(&serde_json::json!({"inputs": "a".repeat(100_000)})).unwrap());
        let (status, _, json) = call(req).await;
        assert_eq!(status, 200, "{json}");
    }

    #[actix_web::test]
    async fn health_is_ok() {
        let (status, _, json) = call(TestRequest::get().uri("/health")).await;
        assert_eq!((status, json), (200, serde_json::json!({"status": "ok"})));
    }

    #[actix_web::test]
    async fn exactly_one_mib_is_accepted() {
        let mut body = br#"{"inputs": ""#.to_vec();
        body.resize(MAX_BODY_BYTES - 2, b'a');
        body.extend_from_slice(br#""}"#);
        let (status, _, json) = call(post(body)).await;
        assert_eq!(status, 200, "{json}");
    }

    #[actix_web::test]
    async fn predictor_failure_is_a_bare_500() {
        let (status, _, json) = call(post(r#"{"inputs": "boom"}"#)).await;
        assert_eq!((status, json), (500, serde_json::json!({"error": "internal error"})));
        let (status, _, json) = call_with(Queued, post(r#"{"inputs": "boom"}"#)).await;
        assert_eq!((status, json), (500, serde_json::json!({"error": "internal error"})));
    }

    #[test]
    fn binding_a_busy_port_fails_with_a_one_line_reason() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            service: ServiceArgs,
        }
        let args =
            |port: u16| Cli::parse_from(["t", "--model-dir", "/m", "--port", &port.to_string()]).service;
        let first = bind(&args(0)).unwrap();
        let port = first.sockets[0].local_addr().unwrap().port();
        let error = bind(&args(port)).unwrap_err();
        assert_eq!(error.to_string(), format!("cannot bind 127.0.0.1:{port}: address in use"));
    }

    #[actix_web::test]
    async fn a_counting_backend_answers_stats_with_its_counts() {
        let (status, _, json) = call_with(Queued, TestRequest::get().uri("/stats")).await;
        assert_eq!((status, json), (200, serde_json::to_value(QUEUED_COUNTS).unwrap()));
        let (status, headers, json) = call_with(Queued, TestRequest::post().uri("/stats")).await;
        assert_eq!((status, json), (405, serde_json::json!({"error": "method not allowed"})));
        assert_eq!(headers.get(header::ALLOW).unwrap(), "GET");
    }

    #[actix_web::test]
    async fn stats_is_an_unknown_path_for_an_unbatched_backend() {
        for req in [TestRequest::get().uri("/stats"), TestRequest::post().uri("/stats")] {
            let (status, _, json) = call(req).await;
            assert_eq!((status, json), (404, serde_json::json!({"error": "not found"})));
        }
    }

    #[actix_web::test]
    async fn method_not_allowed_names_the_allowed_method() {
        let (_, headers, _) = call(TestRequest::delete().uri("/health")).await;
        assert_eq!(headers.get(header::ALLOW).unwrap(), "GET");
    }
}
