//! gRPC calls, recognised on any host: a POST to `/package.Service/Method` with a
//! `content-type` of `application/grpc` (or `application/grpc+proto`, `+json`, …) is
//! `grpc.call {service, method, host, port}`. A connector route that matches the request
//! first wins, as for git.

use http::{HeaderMap, Method, header};

#[derive(Debug, PartialEq, Eq)]
pub(crate) struct GrpcCall {
    /// Fully qualified service name, `package.Service`.
    pub service: String,
    pub method: String,
}

pub(crate) fn recognise(
    method: &Method,
    headers: &HeaderMap,
    segments: &[String],
) -> Option<GrpcCall> {
    if method != Method::POST || !is_grpc(headers) {
        return None;
    }
    let [service, rpc] = segments else {
        return None;
    };
    Some(GrpcCall {
        service: service.clone(),
        method: rpc.clone(),
    })
}

/// Exactly one content type, `application/grpc` optionally followed by `+subtype` or params.
fn is_grpc(headers: &HeaderMap) -> bool {
    let mut values = headers.get_all(header::CONTENT_TYPE).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return false;
    };
    let Ok(text) = value.to_str() else {
        return false;
    };
    let media = text
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    media == "application/grpc" || media.starts_with("application/grpc+")
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(ct: &[&'static str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in ct {
            h.append(header::CONTENT_TYPE, HeaderValue::from_static(v));
        }
        h
    }

    fn segs(p: &str) -> Vec<String> {
        crate::path::normalize(p).unwrap()
    }

    #[test]
    fn service_and_method_come_from_the_path() {
        let call = recognise(
            &Method::POST,
            &headers(&["application/grpc+proto"]),
            &segs("/helloworld.Greeter/SayHello"),
        )
        .unwrap();
        assert_eq!(call.service, "helloworld.Greeter");
        assert_eq!(call.method, "SayHello");
    }

    #[test]
    fn other_content_types_methods_and_paths_are_not_grpc() {
        let p = segs("/a.B/C");
        assert!(recognise(&Method::POST, &headers(&["application/json"]), &p).is_none());
        assert!(recognise(&Method::POST, &headers(&["application/grpcx"]), &p).is_none());
        assert!(recognise(&Method::GET, &headers(&["application/grpc"]), &p).is_none());
        assert!(recognise(&Method::POST, &headers(&[]), &p).is_none());
        assert!(
            recognise(
                &Method::POST,
                &headers(&["application/grpc", "application/json"]),
                &p
            )
            .is_none()
        );
        let deep = segs("/a.B/C/D");
        assert!(recognise(&Method::POST, &headers(&["application/grpc"]), &deep).is_none());
    }
}
