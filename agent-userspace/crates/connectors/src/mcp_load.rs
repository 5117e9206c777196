//! Checking and compiling one `[[mcp]]` entry of a connector file.

use crate::connector::is_connector_name;
use crate::error::{ConnectorError, Problem};
use crate::host::HostPattern;
use crate::load::Ctx;
use crate::mcp::McpEndpoint;
use crate::spec::McpFile;
use toml::Spanned;

impl Ctx<'_> {
    pub(crate) fn mcp_endpoint(
        &self,
        m: &Spanned<McpFile>,
        hosts: &[HostPattern],
    ) -> Result<McpEndpoint, ConnectorError> {
        let f = m.get_ref();
        let server = f.server.get_ref().clone();
        let fail = |at: &dyn Fn(Problem) -> ConnectorError, reason: &str| {
            at(Problem::Mcp {
                server: server.clone(),
                reason: reason.to_string(),
            })
        };
        if !is_connector_name(&server) {
            return Err(fail(
                &|p| self.at(&f.server, p),
                "`server` must be lowercase letters, digits, '-' and '_'",
            ));
        }
        let path = |p: &Spanned<String>, field: &str| {
            let text = p.get_ref();
            if !text.starts_with('/') || text.contains(['?', '#']) {
                return Err(fail(
                    &|pr| self.at(p, pr),
                    &format!("`{field}` must be a path starting with '/', without query"),
                ));
            }
            crate::path::normalize(text).ok_or_else(|| {
                fail(
                    &|pr| self.at(p, pr),
                    &format!("`{field}` is not a readable path"),
                )
            })
        };
        let main = path(&f.path, "path")?;
        let sse_path = f
            .sse_path
            .as_ref()
            .map(|p| path(p, "sse_path"))
            .transpose()?;
        let messages_path = f
            .messages_path
            .as_ref()
            .map(|p| path(p, "messages_path"))
            .transpose()?;
        let endpoint_hosts = match &f.hosts {
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
        Ok(McpEndpoint {
            server,
            hosts: endpoint_hosts,
            path: main,
            sse_path,
            messages_path,
        })
    }
}
