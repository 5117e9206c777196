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

/// Whether a server compresses its replies.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum Gzip {
    #[default]
    Off,
    /// When the request's `Accept-Encoding` names gzip, as real servers do.
    WhenAccepted,
    /// Whatever the request asked: a server that ignores `Accept-Encoding`.
    Always,
}

/// The mutable behaviour of a server: routes, which request headers the default reply
/// echoes back, and whether replies are gzipped.
#[derive(Debug, Default)]
pub(crate) struct Behaviour {
    pub routes: Vec<Route>,
    pub echo_headers: Vec<String>,
    pub gzip: Gzip,
}

impl Behaviour {
    /// `reply` as this server sends it to a request with `accept_encoding`.
    pub fn encode(&self, reply: Reply, accept_encoding: Option<&str>) -> Reply {
        let accepted = accept_encoding.is_some_and(|a| {
            a.split(',')
                .filter_map(|c| c.split(';').next())
                .any(|c| c.trim().eq_ignore_ascii_case("gzip"))
        });
        let wanted = match self.gzip {
            Gzip::Off => false,
            Gzip::WhenAccepted => accepted,
            Gzip::Always => true,
        };
        if !wanted || reply.body.is_empty() {
            return reply;
        }
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        let body = std::io::Write::write_all(&mut gz, &reply.body)
            .and_then(|()| gz.finish())
            .expect("gzip into memory cannot fail");
        Reply { body, ..reply }.with_header("content-encoding", "gzip")
    }

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
            gzip: Gzip::Off,
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
            gzip: Gzip::Off,
        };
        assert_eq!(
            b.find(&Method::PUT, "/x", "/x").map(|r| r.status),
            Some(404)
        );
    }
}
