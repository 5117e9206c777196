//! Canned responses: per-route replies and the default echo reply.

use http::Method;

/// A response a test server sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn text(status: u16, body: &str) -> Self {
        Self {
            status,
            headers: vec![("content-type".into(), "text/plain".into())],
            body: body.as_bytes().to_vec(),
        }
    }

    pub fn json(status: u16, body: &serde_json::Value) -> Self {
        Self {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.to_string().into_bytes(),
        }
    }

    /// An empty body with the given status.
    pub fn status(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }
}

/// A route matches on method (`None` = any) and on either the exact path+query or the path.
#[derive(Debug, Clone)]
pub(crate) struct Route {
    pub method: Option<Method>,
    pub path: String,
    pub reply: Reply,
}

/// The mutable behaviour of a server: routes, and which request headers the default reply
/// echoes back.
#[derive(Debug, Default)]
pub(crate) struct Behaviour {
    pub routes: Vec<Route>,
    pub echo_headers: Vec<String>,
}

impl Behaviour {
    /// Latest matching route wins, so a test can override an earlier one.
    pub fn find(&self, method: &Method, path: &str, path_and_query: &str) -> Option<Reply> {
        self.routes
            .iter()
            .rev()
            .find(|r| {
                r.method.as_ref().is_none_or(|m| m == method)
                    && (r.path == path_and_query || r.path == path)
            })
            .map(|r| r.reply.clone())
    }

    /// `{"method", "path", "host", "echo": {header: value}}` - lets a test see what reached the
    /// upstream (e.g. an injected credential) from the client side.
    pub fn default_reply(&self, rec: &super::Recorded) -> Reply {
        let echo: serde_json::Map<String, serde_json::Value> = self
            .echo_headers
            .iter()
            .filter_map(|name| Some((name.clone(), rec.header(name)?.into())))
            .collect();
        Reply::json(
            200,
            &serde_json::json!({
                "method": rec.method,
                "path": rec.path,
                "host": rec.host,
                "echo": echo,
            }),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(method: Option<Method>, path: &str, status: u16) -> Route {
        Route {
            method,
            path: path.into(),
            reply: Reply::status(status),
        }
    }

    #[test]
    fn route_matches_path_with_or_without_query_and_method() {
        let b = Behaviour {
            routes: vec![route(Some(Method::GET), "/repos/o/r/pulls/1", 201)],
            echo_headers: vec![],
        };
        let hit = b.find(&Method::GET, "/repos/o/r/pulls/1", "/repos/o/r/pulls/1?a=b");
        assert_eq!(hit.map(|r| r.status), Some(201));
        assert_eq!(
            b.find(&Method::POST, "/repos/o/r/pulls/1", "/repos/o/r/pulls/1"),
            None
        );
        assert_eq!(
            b.find(&Method::GET, "/repos/o/r/pulls/2", "/repos/o/r/pulls/2"),
            None
        );
    }

    #[test]
    fn later_route_overrides_earlier() {
        let b = Behaviour {
            routes: vec![route(None, "/x", 200), route(None, "/x", 404)],
            echo_headers: vec![],
        };
        assert_eq!(
            b.find(&Method::PUT, "/x", "/x").map(|r| r.status),
            Some(404)
        );
    }
}
