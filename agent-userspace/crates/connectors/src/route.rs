//! Compiling one `[[route]]`: method, template, params, enrichment, and the key that detects
//! duplicate routes.

use crate::connector::{EnrichRule, Route};
use crate::error::{ConnectorError, Problem};
use crate::host::HostPattern;
use crate::load::{Ctx, bad_name};
use crate::param::{ParamSpec, Source};
use crate::spec::{ParamFile, RouteFile};
use crate::template::{PathTemplate, is_identifier};
use http::Method;
use toml::Spanned;

impl Ctx<'_> {
    pub(crate) fn route(
        &self,
        r: &Spanned<RouteFile>,
        hosts: &[HostPattern],
    ) -> Result<Route, ConnectorError> {
        let f = r.get_ref();
        let method_text = f.method.get_ref();
        let method = if method_text == "*" {
            None
        } else {
            let m = Method::from_bytes(method_text.as_bytes())
                .ok()
                .filter(|_| method_text.bytes().all(|b| b.is_ascii_uppercase()))
                .ok_or_else(|| self.at(&f.method, Problem::Method(method_text.clone())))?;
            Some(m)
        };
        let template = PathTemplate::parse(f.path.get_ref())
            .map_err(|e| self.at(&f.path, Problem::Template(e)))?;
        let action = f.action.get_ref().clone();
        check_action_name(&action).map_err(|p| self.at(&f.action, p))?;
        let route_hosts = match &f.hosts {
            None => None,
            Some(list) => {
                let mut out = Vec::new();
                for h in list {
                    let lower = h.get_ref().to_ascii_lowercase();
                    let Some(p) = hosts.iter().find(|p| p.as_str() == lower) else {
                        return Err(self.at(
                            h,
                            Problem::RouteHostNotInConnector {
                                host: h.get_ref().clone(),
                            },
                        ));
                    };
                    out.push(p.clone());
                }
                Some(out)
            }
        };
        let captures: Vec<String> = template.captures().map(String::from).collect();
        let mut params = Vec::new();
        for (name, p) in &f.params {
            params.push(self.param(name, p, &captures)?);
        }
        for cap in &captures {
            if !f.params.contains_key(cap) {
                params.push(ParamSpec {
                    name: cap.clone(),
                    sources: vec![Source::Path(cap.clone())],
                    ty: None,
                    strip_prefix: None,
                    trim_suffix: None,
                });
            }
        }
        let mut enrich = Vec::new();
        for (param, e) in &f.enrich {
            let fail = |reason: String| {
                self.at(
                    e,
                    Problem::Enrich {
                        param: param.clone(),
                        reason,
                    },
                )
            };
            if !is_identifier(param) {
                return Err(fail("param names are lowercase identifiers".into()));
            }
            if params.iter().any(|p| &p.name == param) {
                return Err(fail("the route already has a param of this name".into()));
            }
            let get = PathTemplate::parse(&e.get_ref().get)
                .map_err(|t| fail(format!("bad `get` template: {t}")))?;
            if let Some(missing) = get
                .captures()
                .find(|c| !params.iter().any(|p| p.name == *c))
            {
                return Err(fail(format!(
                    "`get` uses {{{missing}}}, which is not a param of this route"
                )));
            }
            let json_path = e.get_ref().json.clone();
            if json_path.is_empty() || json_path.split('.').any(str::is_empty) {
                return Err(fail("`json` must be a dotted path like base.ref".into()));
            }
            enrich.push(EnrichRule {
                param: param.clone(),
                get,
                json_path,
                ty: e.get_ref().ty,
            });
        }
        Ok(Route {
            method,
            hosts: route_hosts,
            template,
            query: f
                .query
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            action,
            params,
            enrich,
        })
    }

    fn param(
        &self,
        name: &str,
        p: &Spanned<ParamFile>,
        captures: &[String],
    ) -> Result<ParamSpec, ConnectorError> {
        if !is_identifier(name) {
            return Err(self.at(
                p,
                bad_name("param", name, "use lowercase letters, digits and '_'"),
            ));
        }
        let f = p.get_ref();
        if f.from.is_empty() {
            return Err(self.at(
                p,
                Problem::ParamSource {
                    source_text: String::new(),
                    reason: "`from` lists no source",
                },
            ));
        }
        let mut sources = Vec::new();
        for text in &f.from {
            let source = Source::parse(text).map_err(|problem| self.at(p, problem))?;
            if let Source::Path(cap) = &source
                && !captures.contains(cap)
            {
                return Err(self.at(
                    p,
                    Problem::UnknownCapture {
                        param: name.to_string(),
                        source_text: text.clone(),
                        capture: cap.clone(),
                    },
                ));
            }
            sources.push(source);
        }
        let non_empty = |v: &Option<String>| v.as_ref().is_none_or(|s| !s.is_empty());
        if !non_empty(&f.strip_prefix) || !non_empty(&f.trim_suffix) {
            return Err(self.at(
                p,
                Problem::ParamSource {
                    source_text: name.into(),
                    reason: "strip_prefix / trim_suffix must not be empty",
                },
            ));
        }
        Ok(ParamSpec {
            name: name.to_string(),
            sources,
            ty: f.ty,
            strip_prefix: f.strip_prefix.clone(),
            trim_suffix: f.trim_suffix.clone(),
        })
    }
}

/// Dotted lowercase identifiers, at least two parts; `http.request` is reserved for unmatched
/// requests so a connector cannot make a known request look unknown.
fn check_action_name(action: &str) -> Result<(), Problem> {
    let parts: Vec<&str> = action.split('.').collect();
    if parts.len() < 2 || !parts.iter().all(|p| is_identifier(p)) {
        return Err(bad_name(
            "action",
            action,
            "use dotted lowercase identifiers like github.pr.merge",
        ));
    }
    if action == "http.request" {
        return Err(bad_name(
            "action",
            action,
            "http.request is reserved for unmatched requests",
        ));
    }
    Ok(())
}

/// Two routes with the same key match exactly the same requests.
pub(crate) fn route_key(r: &Route) -> String {
    let mut hosts: Vec<&str> = r.hosts.iter().flatten().map(HostPattern::as_str).collect();
    hosts.sort_unstable();
    let mut query: Vec<String> = r.query.iter().map(|(k, v)| format!("{k}={v}")).collect();
    query.sort_unstable();
    format!(
        "{} {} [{}] ?{}",
        r.method.as_ref().map_or("*", Method::as_str),
        r.template.shape(),
        hosts.join(","),
        query.join("&")
    )
}
